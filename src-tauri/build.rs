fn main() {
    // tauri.conf.json lives at the top of the repository, beside ui/:
    // plain `tauri_build::build()` would look for it beside this crate.
    if let Err(e) =
        tauri_build::try_build(tauri_build::Attributes::new().config_path("../tauri.conf.json"))
    {
        panic!("tauri build step failed: {e:#}");
    }
}
