// Dismissible banners at the top: the shell's notices ("Level 7 started at
// 21:14 while this device was asleep") and refusals of this device's ops.

import { store } from "../app.js";
import { h } from "./dom.js";

class PbBanners extends HTMLElement {
  connectedCallback() {
    if (this.built) return;
    this.built = true;
    this.setAttribute("aria-live", "polite");
    store.subscribe((m, p) => {
      if (!p || m.banners !== p.banners) this.render(m);
    });
    this.render(store.get());
  }

  render(m) {
    this.replaceChildren(
      ...m.banners.map((b) =>
        h(
          "div",
          { class: `banner banner-${b.kind}`, role: b.kind === "error" ? "alert" : "status", dataset: { bannerId: String(b.id) } },
          h("span", { class: "banner-text", text: b.message }),
          b.action
            ? h("button", {
                type: "button",
                class: "banner-action",
                text: b.action.label,
                onclick: () => {
                  store.dispatch({ type: "navigate", screen: b.action.screen });
                  store.dispatch({ type: "dismiss-banner", id: b.id });
                },
              })
            : null,
          h("button", {
            type: "button",
            class: "banner-close",
            "aria-label": "Dismiss",
            title: "Dismiss",
            text: "×",
            onclick: () => store.dispatch({ type: "dismiss-banner", id: b.id }),
          }),
        ),
      ),
    );
    this.hidden = m.banners.length === 0;
  }
}

customElements.define("pb-banners", PbBanners);
