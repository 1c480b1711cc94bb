/*! Rezvo Support chat widget: plain JavaScript, no build step, no third-party requests.
 *
 *   <script src="https://support.example.com/static/support/widget.js"
 *           data-api="https://support.example.com" data-source="web" async></script>
 *
 * Optional data-* attributes (each overrides GET /api/support/widget/config): data-title, data-greeting,
 * data-colour (#rgb / #rrggbb), data-position (right | left), data-questions ("One?|Two?"),
 * data-support-email. window.RezvoSupport offers open(), close() and reset().
 *
 * Identity (rendered by the embedding site's server): data-user-id, data-business-id, data-audience
 * (diner | owner), data-email, data-name and data-user-hash = HMAC-SHA256(secret, user id) in hex. With a
 * valid hash the conversation is verified and the widget lists the customer's earlier conversations.
 * The secret itself never belongs in the page.
 *
 * Safety rule for this file: text from the customer or the model only ever reaches the page through
 * textContent / Text nodes (see h() and markdown()); never innerHTML.
 */
(() => {
  "use strict";
  if (window.RezvoSupport) return; // included twice: the first copy wins

  const script =
    document.currentScript || document.querySelector('script[src*="/support/widget"][src$=".js"], script[data-api]');
  const data = (script && script.dataset) || {};
  const scriptUrl = new URL((script && script.src) || location.href, location.href);
  const API = (data.api || scriptUrl.origin).replace(/\/+$/, "");
  // One stored conversation per signed-in user, so the next person on a shared computer never sees it.
  const STORE_KEY = "rezvo-support:" + new URL(API, location.href).origin + (data.userId ? ":" + data.userId : "");
  const CSS_URL = new URL("widget.css", scriptUrl).href;
  const reduceMotion = window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)").matches;

  const DEFAULTS = {
    title: "Support",
    greeting: "Hi! How can we help?",
    quick_questions: [],
    primary_colour: "#0f766e",
    position: "right",
    support_email: "",
    max_message_chars: 4000,
  };
  // The identity the embedding site's server rendered into the tag: request field, data-* attribute.
  const IDENTITY = [
    ["user_id", "userId"],
    ["business_id", "businessId"],
    ["audience", "audience"],
    ["email", "email"],
    ["name", "name"],
    ["user_hash", "userHash"],
  ];
  const SUBTITLE = "AI assistant · a person can take over";
  const HANDOFF_REASON = {
    claude_unavailable: "Our assistant is unavailable right now, so we've passed your question to our support team.",
    budget: "Our assistant is unavailable right now, so we've passed your question to our support team.",
  };
  const ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    close: "M6 6l12 12M18 6L6 18",
    send: "M4 12l16-8-6 16-2.5-6.5z",
    up: "M7 11v9H4v-9zm0 0l4-8a2 2 0 0 1 2 2v4h5.5a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.3 20H7",
    down: "M7 13V4H4v9zm0 0l4 8a2 2 0 0 0 2-2v-4h5.5a2 2 0 0 0 2-2.3l-1.2-7A2 2 0 0 0 17.3 4H7",
    refresh: "M4 12a8 8 0 0 1 14-5.3M20 4v4h-4M20 12a8 8 0 0 1-14 5.3M4 20v-4h4",
  };

  // --- Tiny DOM helpers --------------------------------------------------------------------
  // Strings become Text nodes (append) or textContent ("text"): markup in them is never parsed.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (name === "text") el.textContent = value;
      else if (name === "class") el.className = value;
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) if (child != null && child !== false) el.append(child);
    return el;
  }

  function icon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  // --- Safe minimal markdown: paragraphs, **bold**, *italic*, `code`, lists, links (http/https/mailto) ----
  // *italic* needs a non-space just inside each star and no word character or star just outside,
  // so "2 * 3", "a*b*c" and list bullets ("* item", handled per line first) stay as written.
  const INLINE =
    /\*\*(.+?)\*\*|\[([^\]\n]+)\]\(\s*([^()\s]+)\s*\)|`([^`\n]+)`|((?:https?:\/\/|mailto:)[^\s<>"'`]+)|([\w.+-]+@[\w-]+(?:\.[\w-]+)+)|(?<![\w*])\*(?![\s*])([^*\n]*?[^\s*])\*(?![\w*])/g;

  function safeLink(href, label) {
    let url;
    try {
      url = new URL(href);
    } catch {
      return null;
    }
    if (!/^(https?|mailto):$/.test(url.protocol)) return null;
    return h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer", text: label });
  }

  function inline(parent, text) {
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) parent.append(text.slice(last, m.index));
      last = m.index + m[0].length;
      if (m[1] != null) {
        const strong = h("strong");
        inline(strong, m[1]);
        parent.append(strong);
      } else if (m[2] != null) {
        parent.append(safeLink(m[3], m[2]) || m[0]);
      } else if (m[4] != null) {
        parent.append(h("code", { text: m[4] }));
      } else if (m[7] != null) {
        const em = h("em");
        inline(em, m[7]);
        parent.append(em);
      } else if (m[5] != null) {
        const tail = (/[.,;:!?)\]]+$/.exec(m[5]) || [""])[0];
        const url = m[5].slice(0, m[5].length - tail.length);
        parent.append(safeLink(url, url) || url, tail);
      } else {
        parent.append(safeLink("mailto:" + m[6], m[6]) || m[6]);
      }
    }
    if (last < text.length) parent.append(text.slice(last));
  }

  function markdown(text) {
    const out = document.createDocumentFragment();
    let para = null;
    let list = null;
    for (const raw of String(text).replace(/\r\n?/g, "\n").split("\n")) {
      const line = raw.trimEnd();
      const item = /^\s*(?:([-*•])|(\d{1,3})[.)])\s+(.*)$/.exec(line);
      const heading = /^#{1,6}\s+(.*)$/.exec(line);
      if (!line.trim()) {
        para = list = null;
      } else if (item) {
        const tag = item[1] ? "ul" : "ol";
        if (!list || list.localName !== tag) {
          list = out.appendChild(h(tag, { start: item[2] && item[2] !== "1" ? item[2] : null }));
        }
        para = null;
        inline(list.appendChild(h("li")), item[3]);
      } else if (heading) {
        para = list = null;
        inline(out.appendChild(h("p")).appendChild(h("strong")), heading[1]);
      } else {
        list = null;
        if (para) para.append(h("br"));
        else para = out.appendChild(h("p"));
        inline(para, line);
      }
    }
    return out;
  }

  // --- Storage and HTTP --------------------------------------------------------------------
  function loadConversation() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
      if (saved && typeof saved.id === "string" && typeof saved.token === "string") return saved;
    } catch {
      /* storage blocked or corrupt: start afresh */
    }
    return null;
  }

  function saveConversation(conv) {
    try {
      if (conv) localStorage.setItem(STORE_KEY, JSON.stringify({ id: conv.id, token: conv.token }));
      else localStorage.removeItem(STORE_KEY);
    } catch {
      /* private mode: the conversation simply won't survive a reload */
    }
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const x = Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  class ApiError extends Error {
    constructor(status, body, retryAfter) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
      this.retryAfter = retryAfter;
    }
  }

  async function apiError(res) {
    let body = {};
    try {
      body = await res.json();
    } catch {
      /* not JSON (a proxy's error page) */
    }
    const retryAfter = Number(res.headers.get("Retry-After")) || Number(body.retry_after) || 0;
    return new ApiError(res.status, body, Math.ceil(retryAfter));
  }

  // credentials: "omit" so a staff session cookie on the same site never turns the widget into staff
  // (and never needs a CSRF token); the conversation's own secret is the widget's only credential.
  function api(method, path, body, { key, token = true, etag } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token && state.conv) headers["X-Conversation-Token"] = state.conv.token;
    if (key) headers["Idempotency-Key"] = key;
    if (etag) headers["If-None-Match"] = etag;
    return fetch(`${API}/api/support/${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      mode: "cors",
      // Polls revalidate with their own ETag: the browser's cache must neither answer nor store them.
      cache: etag === undefined ? "default" : "no-store",
    });
  }

  // --- State and UI ------------------------------------------------------------------------
  const state = {
    config: { ...DEFAULTS },
    conv: loadConversation(),
    loaded: false, // the stored conversation's transcript is on screen
    busy: false,
    escalated: false,
    contactEmail: "", // given in the hand-off form (or restored): later hand-offs confirm it, not ask again
    userScrolled: false, // the visitor scrolled the transcript since their last message: don't yank it
    handledBy: "bot", // "human" while a person owns the conversation: the bot stays quiet
    agent: null, // {name, initial} of the person who owns it, once known
    lastId: "", // the newest message on screen, for GET .../messages?after=
  };
  let ui = null;

  function attr(name) {
    const value = data[name];
    return value == null || value === "" ? undefined : value;
  }

  function mergeConfig(server) {
    const c = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS)) if (server && server[key] != null) c[key] = server[key];
    const questions = attr("questions");
    const overrides = {
      title: attr("title"),
      greeting: attr("greeting"),
      primary_colour: attr("colour") || attr("color"),
      position: attr("position"),
      support_email: attr("supportEmail"),
      quick_questions: questions && questions.split("|").map((q) => q.trim()).filter(Boolean),
    };
    for (const [key, value] of Object.entries(overrides)) if (value !== undefined) c[key] = value;
    if (!/^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(c.primary_colour)) c.primary_colour = DEFAULTS.primary_colour;
    if (c.position !== "left") c.position = "right";
    c.quick_questions = (Array.isArray(c.quick_questions) ? c.quick_questions : []).slice(0, 6).map(String);
    return c;
  }

  // --- Colours: readable whatever the brand colour (WCAG 2 contrast; AA is 4.5:1 for text) ------
  const rgbOf = (hex) => {
    const v = hex.length === 4 ? hex.replace(/[0-9a-f]/gi, "$&$&").slice(1) : hex.slice(1);
    return [0, 2, 4].map((i) => parseInt(v.slice(i, i + 2), 16));
  };
  const hexOf = (rgb) => "#" + rgb.map((c) => Math.round(c).toString(16).padStart(2, "0")).join("");
  const mix = (a, b, t) => a.map((c, i) => c + (b[i] - c) * t); // t of b into a
  function luminance(rgb) {
    const [r, g, b] = rgb.map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function contrast(a, b) {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  }
  const WHITE = [255, 255, 255];
  const BLACK = [0, 0, 0];

  // Text and icons on the brand colour: white or black, whichever contrasts more. One of the two
  // always reaches 4.58:1, where near-black (#111827) can fall to 4.2:1 on mid tones.
  function onColour(hex) {
    const rgb = rgbOf(hex);
    return contrast(rgb, WHITE) >= contrast(rgb, BLACK) ? "#ffffff" : "#000000";
  }

  // The brand colour as text on the widget's light surfaces (chips, links, pressed thumbs): darkened
  // just enough to reach 4.5:1 on the darkest of them (the grey bot bubble, a 10% brand tint).
  function textColour(hex) {
    const rgb = rgbOf(hex);
    const surfaces = [[243, 244, 246], mix(WHITE, rgb, 0.1)];
    for (let t = 0; t <= 1; t += 0.05) {
      const candidate = mix(rgb, BLACK, t);
      if (surfaces.every((bg) => contrast(candidate, bg) >= 4.6)) return hexOf(candidate);
    }
    return "#000000";
  }

  function build() {
    const c = state.config;
    const host = document.createElement("rezvo-support");
    const root = host.attachShadow({ mode: "open" });
    const link = h("link", { rel: "stylesheet", href: CSS_URL });
    const wrap = h("div", { class: `rz rz--${c.position}`, hidden: true, onkeydown: onKey });
    wrap.style.setProperty("--rz-primary", c.primary_colour);
    wrap.style.setProperty("--rz-on-primary", onColour(c.primary_colour));
    wrap.style.setProperty("--rz-primary-text", textColour(c.primary_colour));
    // Shown once the stylesheet is in, so the page never flashes an unstyled button.
    link.addEventListener("load", () => (wrap.hidden = false));
    link.addEventListener("error", () => console.warn("Rezvo Support: could not load", CSS_URL));

    const launcher = h(
      "button",
      {
        type: "button",
        class: "rz-launcher",
        "aria-label": "Open support chat",
        "aria-expanded": "false",
        "aria-controls": "rz-panel",
        onclick: () => (isOpen() ? close() : open()),
      },
      h("span", { class: "rz-launcher-open" }, icon("chat")),
      h("span", { class: "rz-launcher-close" }, icon("close")),
    );
    const log = h("div", {
      class: "rz-log",
      role: "log",
      "aria-live": "polite",
      "aria-relevant": "additions",
      "aria-label": "Conversation",
      tabindex: "0",
    });
    const input = h("textarea", {
      id: "rz-input",
      class: "rz-input",
      rows: "1",
      placeholder: "Ask a question…",
      maxlength: String(c.max_message_chars),
      "aria-label": "Your message",
      autocomplete: "off",
    });
    const sendButton = h("button", { type: "submit", class: "rz-send", "aria-label": "Send message" }, icon("send"));
    const form = h("form", { class: "rz-compose", onsubmit: onSubmit }, input, sendButton);
    const alert = h("div", { class: "rz-alert", role: "alert", hidden: true });
    const newButton = h(
      "button",
      { type: "button", class: "rz-new", onclick: askNew, hidden: true },
      icon("refresh"),
      "Start a new conversation",
    );
    // Starting over forgets this conversation on this device, so it is confirmed first.
    const confirmNew = h(
      "div",
      { class: "rz-confirm", role: "group", "aria-labelledby": "rz-confirm-text", hidden: true },
      h("p", { id: "rz-confirm-text", text: "Start a new conversation? This one will be closed on this device." }),
      h("button", { type: "button", class: "rz-confirm-yes", text: "Start new", onclick: startNew }),
      h("button", { type: "button", class: "rz-confirm-no", text: "Keep this one", onclick: keepConversation }),
    );
    const panel = h(
      "div",
      {
        id: "rz-panel",
        class: "rz-panel",
        role: "dialog",
        "aria-modal": "true",
        "aria-labelledby": "rz-title",
        hidden: true,
      },
      h(
        "div",
        { class: "rz-header" },
        h("div", { class: "rz-avatar", "aria-hidden": "true" }, icon("chat")),
        h(
          "div",
          { class: "rz-heading" },
          h("h2", { id: "rz-title", class: "rz-title", text: c.title }),
          h("p", { class: "rz-subtitle", text: SUBTITLE }),
        ),
        h(
          "button",
          { type: "button", class: "rz-icon-button", "aria-label": "Close support chat", onclick: () => close() },
          icon("close"),
        ),
      ),
      log,
      h("div", { class: "rz-footer" }, alert, form, newButton, confirmNew),
    );
    wrap.append(panel, launcher);
    root.append(link, wrap);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    input.addEventListener("input", autoGrow);
    for (const type of ["wheel", "touchmove", "keydown"]) {
      log.addEventListener(type, () => (state.userScrolled = true), { passive: true });
    }
    document.body.append(host);
    ui = { host, root, wrap, panel, launcher, log, input, sendButton, form, alert, newButton, confirmNew };
    renderFresh();
    if (state.openWhenReady) open();
  }

  function autoGrow() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight, 132) + "px";
  }

  const isOpen = () => ui && !ui.panel.hidden;

  function open() {
    if (!ui) {
      state.openWhenReady = true; // RezvoSupport.open() called before the config arrived
      return;
    }
    if (isOpen()) return;
    ui.panel.hidden = false;
    ui.wrap.classList.add("rz--open");
    ui.launcher.setAttribute("aria-expanded", "true");
    ui.launcher.setAttribute("aria-label", "Close support chat");
    ui.input.focus();
    scrollToEnd(true);
    if (state.conv && !state.loaded && !state.busy) restore();
    else if (live.timer) livePoll(0); // opened again: catch up now
  }

  function close() {
    if (!isOpen()) return;
    ui.panel.hidden = true;
    ui.wrap.classList.remove("rz--open");
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.setAttribute("aria-label", "Open support chat");
    ui.launcher.focus(); // focus goes back to what opened the panel
  }

  function focusables() {
    const selector = "button:not([disabled]), textarea:not([disabled]), input:not([disabled]), a[href], [tabindex='0']";
    return [...ui.panel.querySelectorAll(selector)].filter((el) => el.getClientRects().length);
  }

  function onKey(e) {
    if (!isOpen()) return;
    if (e.key === "Escape") {
      e.stopPropagation();
      close();
    } else if (e.key === "Tab") {
      // Keep Tab inside the dialog while it is open.
      const items = focusables();
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      const active = ui.root.activeElement;
      if (e.shiftKey && (active === first || !ui.panel.contains(active))) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && (active === last || !ui.panel.contains(active))) {
        e.preventDefault();
        first.focus();
      }
    }
  }

  // force: scroll even when the visitor is not near the end (they just sent a message, or a reply landed
  // and they have not scrolled away since sending).
  function scrollToEnd(force) {
    const log = ui.log;
    if (force || log.scrollHeight - log.scrollTop - log.clientHeight < 120) {
      log.scrollTo({ top: log.scrollHeight, behavior: reduceMotion || force ? "auto" : "smooth" });
    }
  }

  function addMessage(role, text, id, author) {
    const bubble = h("div", { class: "rz-bubble" });
    bubble.append(markdown(text));
    const agent = role === "agent" ? agentOf(author) : null;
    const said = role === "user" ? "You said:" : agent ? `${agent.name} from support said:` : "Support said:";
    const row = h(
      "div",
      { class: `rz-row rz-row--${role}`, "data-id": id || null },
      h("span", { class: "rz-sr", text: said }),
      agent &&
        h(
          "div",
          { class: "rz-agent", "aria-hidden": "true" },
          h("span", { class: "rz-agent-badge", text: agent.initial }),
          h("span", { class: "rz-agent-name", text: agent.name }),
        ),
      bubble,
    );
    if (id) state.lastId = String(id);
    ui.log.append(row);
    scrollToEnd(role === "user");
    return row;
  }

  function renderFresh() {
    ui.log.replaceChildren();
    state.escalated = false;
    addMessage("assistant", state.config.greeting).classList.add("rz-row--greeting");
    if (!state.conv && state.config.quick_questions.length) {
      const chips = state.config.quick_questions.map((q) =>
        h("button", { type: "button", class: "rz-chip", text: q, onclick: () => send(q) }),
      );
      ui.log.append(h("div", { class: "rz-quick", role: "group", "aria-label": "Suggested questions" }, chips));
    }
    if (!state.conv) showPast();
    ui.newButton.hidden = !state.conv;
    ui.confirmNew.hidden = true;
  }

  function setBusy(busy) {
    state.busy = busy;
    ui.sendButton.disabled = busy;
    ui.newButton.disabled = busy;
    ui.log.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function showAlert(message, retry, waitSeconds) {
    const button = retry && h("button", { type: "button", class: "rz-retry", text: "Retry", onclick: retry });
    const text = h("span");
    inline(text, message); // text nodes, with the support email as a mailto: link
    ui.alert.replaceChildren(text, button || "");
    ui.alert.hidden = false;
    if (button && waitSeconds > 0) {
      button.disabled = true;
      setTimeout(() => (button.disabled = false), Math.min(waitSeconds, 60) * 1000);
    }
  }

  function clearAlert() {
    ui.alert.hidden = true;
    ui.alert.replaceChildren();
  }

  function waitText(seconds) {
    if (!seconds) return "Please try again shortly.";
    if (seconds <= 90) return `Please wait ${seconds} s and try again.`;
    return `Please wait about ${Math.ceil(seconds / 60)} minutes and try again.`;
  }

  function orEmail() {
    const email = state.config.support_email;
    return email ? ` Or email us at ${email}.` : "";
  }

  function describe(error) {
    if (error.streamMessage) return error.streamMessage;
    if (error instanceof ApiError) {
      const reason = error.status === 429 ? error.body.reason : "";
      if (reason === "max_turns") return error.body.detail;
      if (reason === "conversation_create") {
        // The per-IP limit on NEW conversations: an office or a mobile network shares one IP.
        return (
          "We can't start a new conversation from your network right now: many were started from it recently. " +
          waitText(error.retryAfter) +
          orEmail()
        );
      }
      if (reason === "widget_ip") {
        return "Support is busy with many messages from your network right now. " + waitText(error.retryAfter) + orEmail();
      }
      if (error.status === 429) return "You're sending messages faster than we can answer. " + waitText(error.retryAfter);
      if (error.status >= 400 && error.status < 500 && error.body.detail) return error.body.detail;
      return "Support is having trouble right now. Please try again.";
    }
    return "We couldn't reach support. Check your connection and try again.";
  }

  // Retrying cannot help: the request itself was refused, or this conversation is full.
  const final = (error) =>
    error instanceof ApiError && (error.status === 400 || (error.status === 429 && error.body.reason === "max_turns"));

  // --- Conversations and turns -------------------------------------------------------------
  async function ensureConversation() {
    if (state.conv) return state.conv;
    const body = { source: data.source || "web" };
    if (/^https?:$/.test(location.protocol) && location.href.length <= 2048) body.page_url = location.href;
    for (const [field, key] of IDENTITY) if (data[key]) body[field] = data[key];
    let res = await api("POST", "conversations", body, { token: false });
    if (res.status === 400) {
      // A field the server will not take (an odd page URL, an unknown source): start without it.
      const err = await apiError(res);
      for (const field of Object.keys(err.body.errors || {})) delete body[field];
      res = await api("POST", "conversations", body, { token: false });
    }
    if (res.status !== 201) throw await apiError(res);
    const created = await res.json();
    state.conv = { id: String(created.id), token: created.token };
    state.loaded = true;
    saveConversation(state.conv);
    ui.newButton.hidden = false;
    return state.conv;
  }

  function forgetConversation() {
    liveStop();
    Object.assign(state, { handledBy: "bot", agent: null, lastId: "" });
    Object.assign(live, { status: "", handedBack: false });
    const subtitle = ui && ui.root.querySelector(".rz-subtitle");
    if (subtitle) subtitle.textContent = SUBTITLE;
    state.conv = null;
    state.contactEmail = "";
    state.loaded = false;
    saveConversation(null);
  }

  async function restore() {
    const conv = state.conv;
    setBusy(true);
    clearAlert();
    try {
      const res = await api("GET", `conversations/${encodeURIComponent(conv.id)}`);
      if ([401, 403, 404].includes(res.status)) {
        forgetConversation(); // the server no longer knows it: start clean
        renderFresh();
        return;
      }
      if (!res.ok) throw await apiError(res);
      const body = await res.json();
      if (state.conv !== conv) return; // "new conversation" was pressed meanwhile
      state.loaded = true;
      renderFresh();
      let lastAssistant = null;
      for (const m of body.messages || []) {
        const role = m.role === "user" || m.role === "agent" ? m.role : "assistant";
        const row = addMessage(role, m.content || "", String(m.id), m.author);
        if (role === "assistant") lastAssistant = row;
      }
      if (lastAssistant) addRating(lastAssistant, body.rating || "");
      if (body.escalated) showHandoff(body.escalation_reason, body.contact_email);
      if (body.handled_by) setOwner(body.handled_by, body.agent);
      live.status = body.status || "";
      scrollToEnd(true);
      // One poll (once this restore is done) learns who answers now; it goes on only while a person
      // does or the queue waits.
      setTimeout(liveTick, 0);
    } catch (error) {
      showAlert("We couldn't load your conversation. " + describe(error), () => restore());
    } finally {
      setBusy(false);
    }
  }

  function askNew() {
    ui.newButton.hidden = true;
    ui.confirmNew.hidden = false;
    ui.confirmNew.querySelector(".rz-confirm-no").focus();
  }

  function keepConversation() {
    ui.confirmNew.hidden = true;
    ui.newButton.hidden = !state.conv;
    ui.newButton.focus();
  }

  function startNew() {
    forgetConversation();
    clearAlert();
    renderFresh();
    ui.input.focus();
  }

  function onSubmit(e) {
    e.preventDefault();
    if (state.busy) return;
    const text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    autoGrow();
    send(text);
  }

  function send(text) {
    if (state.busy) return;
    const quick = ui.log.querySelector(".rz-quick");
    if (quick) quick.remove();
    state.userScrolled = false;
    // One key per customer turn: every retry of this turn reuses it, so the server stores it once.
    const turn = { text, key: uuid(), row: addMessage("user", text) };
    runTurn(turn);
  }

  function typingRow() {
    const bubble = h(
      "div",
      { class: "rz-bubble rz-typing", role: "status", "aria-label": "Support is typing" },
      h("span"),
      h("span"),
      h("span"),
    );
    const row = h("div", { class: "rz-row rz-row--assistant" }, bubble);
    ui.log.append(row);
    scrollToEnd(false);
    return row;
  }

  async function runTurn(turn) {
    setBusy(true);
    clearAlert();
    const row = typingRow();
    try {
      await ensureConversation();
      const done = await chat(turn, row);
      turn.row.classList.remove("rz-row--failed");
      if (done.user_message_id) {
        turn.row.dataset.id = String(done.user_message_id);
        state.lastId = turn.row.dataset.id;
      }
      if (done.handled_by === "human") {
        row.remove(); // a person owns this conversation: no bot text, ever
        setOwner("human", done.agent);
        livePoll(ACTIVE_MS);
      } else {
        finishReply(row, done);
      }
    } catch (error) {
      row.remove();
      if (!(error instanceof ApiError)) diagnoseCors();
      if (final(error)) {
        // The message was refused (too long, conversation full...): give it back to edit, no retry.
        turn.row.remove();
        ui.input.value = turn.text;
        autoGrow();
        showAlert(describe(error));
      } else {
        turn.row.classList.add("rz-row--failed");
        showAlert(describe(error), () => runTurn(turn), error.status === 429 ? error.retryAfter : 0);
      }
    } finally {
      setBusy(false);
    }
  }

  async function chat(turn, row) {
    let restarted = false;
    for (let attempt = 0; ; attempt++) {
      const res = await api(
        "POST",
        `conversations/${encodeURIComponent(state.conv.id)}/chat`,
        { message: turn.text, stream: true },
        { key: turn.key },
      );
      if (res.status === 429 && attempt < 3 && res.headers.get("Retry-After") === "1") {
        // Every reply thread of the worker we reached is busy (`server_busy`): the next try usually lands on another.
        await sleep(1000);
        continue;
      }
      if (res.status === 409 && attempt < 30) {
        // The first try of this turn is still being answered: wait for it, then get its stored reply.
        await sleep(1000 * Math.min(Number(res.headers.get("Retry-After")) || 1, 5));
        continue;
      }
      if ([401, 403, 404].includes(res.status) && !restarted) {
        restarted = true; // the stored conversation is gone server-side: open a new one for this turn
        forgetConversation();
        await ensureConversation();
        continue;
      }
      if (!res.ok) throw await apiError(res);
      if (!(res.headers.get("Content-Type") || "").includes("text/event-stream")) return res.json();
      return readStream(res, row);
    }
  }

  // Server-sent events over fetch (EventSource cannot POST or send headers).
  async function readStream(res, row) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let text = "";
    let done = null;
    let frame = 0;
    const paint = () => {
      frame = 0;
      showText(row, text, true);
    };
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const lines = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) lines.push(line.slice(5).replace(/^ /, ""));
        }
        if (!lines.length) continue;
        const payload = JSON.parse(lines.join("\n"));
        if (event === "delta") {
          text += payload.text || "";
          // Many deltas can land in one frame: paint at most once per frame.
          if (!frame) frame = requestAnimationFrame(paint);
        } else if (event === "done") {
          done = payload;
        } else if (event === "error") {
          // The reply was not stored: the Retry button resends this turn with the same key (never stored twice).
          throw Object.assign(new Error(payload.message || "stream error"), { streamMessage: payload.message });
        }
      }
    }
    if (frame) cancelAnimationFrame(frame);
    if (!done) throw new Error("The reply stream ended early.");
    return done;
  }

  function showText(row, text, streaming) {
    let bubble = row.querySelector(".rz-bubble");
    if (bubble.classList.contains("rz-typing")) {
      bubble.remove();
      bubble = row.appendChild(h("div", { class: "rz-bubble" }));
      row.prepend(h("span", { class: "rz-sr", text: "Support said:" }));
    }
    bubble.classList.toggle("rz-streaming", streaming);
    bubble.replaceChildren(markdown(text));
    scrollToEnd(!state.userScrolled);
  }

  function finishReply(row, done) {
    showText(row, done.text || "", false);
    if (done.message_id != null) row.dataset.id = state.lastId = String(done.message_id);
    addSources(row, done.sources);
    addRating(row, "", done.ask_if_answered === true);
    // Every hand-off brings the email form (or its confirmation) back under the reply that made it.
    if (done.escalated) {
      showHandoff(done.escalation_reason, state.contactEmail);
      live.status = "needs_review";
      live.handedBack = false;
      livePoll(ACTIVE_MS); // waiting in the queue: a person's reply should show without a reload
    }
    // A one-shot (JSON) reply lands in one piece, often taller than the 120 px "near the end" margin.
    scrollToEnd(!state.userScrolled);
  }

  // The knowledge-base articles the answer cited: a title, linked when the article has a public page.
  function addSources(row, sources) {
    const bubble = row.querySelector(".rz-bubble");
    const old = bubble && bubble.querySelector(".rz-sources");
    if (old) old.remove();
    if (!bubble || !Array.isArray(sources) || !sources.length) return;
    const items = sources.map((source) =>
      h("li", {}, (source.url && safeLink(source.url, source.title)) || h("span", { text: source.title })),
    );
    bubble.append(h("div", { class: "rz-sources" }, h("p", { class: "rz-sources-title", text: "Sources" }), h("ul", {}, items)));
  }

  // --- Rating and hand-off -----------------------------------------------------------------
  // After a substantive answer (the server says so: `ask_if_answered`) the row asks "Did that answer your
  // question?" once, under that answer only; Yes is a thumbs-up (the outcome `confirmed`), No a thumbs-down.
  // Other replies (greetings, hand-offs) keep the quiet "Helpful?" thumbs.
  function addRating(row, current, ask) {
    for (const old of ui.log.querySelectorAll(".rz-rate")) old.remove(); // one rating: the latest reply's
    const note = h("span", { class: "rz-rate-note", "aria-live": "polite" });
    const buttons = [];
    const rate = async (value) => {
      note.textContent = "";
      try {
        const body = { rating: value };
        if (row.dataset.id) body.message_id = row.dataset.id;
        const res = await api("POST", `conversations/${encodeURIComponent(state.conv.id)}/rating`, body);
        if (!res.ok) throw await apiError(res);
        for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.value === value));
        note.textContent = "Thanks for your feedback.";
      } catch {
        note.textContent = "Couldn't save your rating. Please try again.";
      }
    };
    for (const [value, label] of [
      ["up", "Yes, this helped"],
      ["down", "No, this didn't help"],
    ]) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: "rz-thumb",
            "data-value": value,
            "aria-label": label,
            title: label,
            "aria-pressed": String(current === value),
            onclick: () => rate(value),
          },
          icon(value),
          ask ? h("span", { class: "rz-thumb-text", text: value === "up" ? "Yes" : "No" }) : null,
        ),
      );
    }
    const prompt = ask ? "Did that answer your question?" : "Helpful?";
    row.after(h("div", { class: "rz-rate" + (ask ? " rz-rate--ask" : "") }, h("span", { text: prompt }), buttons, note));
  }

  function showHandoff(reason, contactEmail) {
    state.escalated = true;
    const old = ui.log.querySelector(".rz-handoff");
    const typed = old && old.querySelector(".rz-email") ? old.querySelector(".rz-email").value : "";
    if (old) old.remove();
    if (contactEmail) state.contactEmail = contactEmail;
    const box = h(
      "div",
      { class: "rz-handoff" },
      h("p", {
        class: "rz-handoff-title",
        text: HANDOFF_REASON[reason] || "We've passed this conversation to our support team.",
      }),
    );
    const confirm = (email) => h("p", { class: "rz-handoff-done", text: `Thanks! A person will reply to ${email}.` });
    if (contactEmail) {
      box.append(confirm(contactEmail));
    } else {
      const support = state.config.support_email;
      const email = h("input", {
        id: "rz-email",
        type: "email",
        class: "rz-email",
        required: true,
        autocomplete: "email",
        placeholder: "you@example.com",
        maxlength: "254",
        value: typed || null,
      });
      const error = h("p", { class: "rz-field-error", "aria-live": "polite" });
      const button = h("button", { type: "submit", class: "rz-email-send", text: "Send" });
      const form = h(
        "form",
        {
          class: "rz-email-form",
          onsubmit: async (e) => {
            e.preventDefault();
            const value = email.value.trim();
            if (!value) return;
            button.disabled = true;
            error.textContent = "";
            try {
              const res = await api("POST", `conversations/${encodeURIComponent(state.conv.id)}/contact`, {
                email: value,
              });
              if (!res.ok) throw await apiError(res);
              const saved = await res.json();
              state.contactEmail = saved.contact_email || value;
              form.replaceWith(confirm(state.contactEmail));
            } catch (err) {
              const fieldError = err instanceof ApiError && err.body.errors && err.body.errors.email;
              error.textContent = fieldError ? fieldError[0] : describe(err);
              button.disabled = false;
            }
          },
        },
        h("label", { for: "rz-email", text: "Your email, so a person can reply" }),
        h("div", { class: "rz-email-row" }, email, button),
        error,
      );
      box.append(form);
      if (support) {
        const p = h("p", { class: "rz-handoff-alt" }, "Or write to us at ");
        p.append(safeLink("mailto:" + support, support) || support, ".");
        box.append(p);
      }
    }
    ui.log.append(box);
    scrollToEnd(false);
  }

  // --- A person answers: agent turns, "Sent - Sam will reply here", polling while a person owns it ---------
  // GET .../messages?after=<last id> every 3 s while a person owns the conversation or it waits in the
  // queue after an escalation; every 30 s while the tab is hidden or the panel closed; not at all once
  // the bot owns it again. An unchanged poll is a 304 (If-None-Match).
  const ACTIVE_MS = 3000;
  const IDLE_MS = 30000;
  const WAITING = ["needs_review", "open", "in_progress"];
  const live = { timer: 0, etag: "", status: "", handedBack: false };

  function agentOf(author) {
    const name = (author && typeof author.name === "string" && author.name.trim()) || "Support";
    const initial = (author && typeof author.initial === "string" && author.initial.trim()) || name[0];
    return { name, initial: initial.slice(0, 2).toUpperCase() };
  }

  function sentText() {
    return state.agent && state.agent.name
      ? `Sent - ${agentOf(state.agent).name} will reply here`
      : "Sent - a person will reply here";
  }

  // Who answers now: a person's name in the header, and the note under the customer's latest turn.
  function setOwner(handledBy, agent) {
    if (agent) state.agent = agent;
    if (state.handledBy === "human" && handledBy === "bot") live.handedBack = true;
    if (handledBy === "human") live.handedBack = false;
    state.handledBy = handledBy === "human" ? "human" : "bot";
    const person = state.handledBy === "human";
    const subtitle = ui.root.querySelector(".rz-subtitle");
    if (subtitle) {
      const who = state.agent ? `${agentOf(state.agent).name} from our team` : "A person from our team";
      subtitle.textContent = person ? `${who} is answering` : SUBTITLE;
    }
    const rows = ui.log.querySelectorAll(".rz-row");
    const last = rows[rows.length - 1];
    const note = ui.log.querySelector(".rz-sent");
    if (!person || !last || !last.classList.contains("rz-row--user")) {
      if (note) note.remove();
    } else if (note && note.previousElementSibling === last) {
      note.textContent = sentText();
    } else {
      if (note) note.remove();
      last.after(h("p", { class: "rz-sent", role: "status", text: sentText() }));
    }
  }

  const shouldPoll = () =>
    !!state.conv &&
    (state.handledBy === "human" || (state.escalated && !live.handedBack && WAITING.includes(live.status)));

  function liveStop() {
    clearTimeout(live.timer);
    live.timer = 0;
    live.etag = "";
  }

  function livePoll(delay) {
    clearTimeout(live.timer);
    live.timer = 0;
    if (!shouldPoll()) return;
    const idle = document.hidden || !isOpen();
    live.timer = setTimeout(liveTick, delay != null ? delay : idle ? IDLE_MS : ACTIVE_MS);
  }

  async function liveTick() {
    live.timer = 0;
    const conv = state.conv;
    if (!conv) return;
    if (state.busy) return livePoll(); // a turn is on its way: its answer says who owns it
    let wait;
    try {
      const after = state.lastId ? `?after=${encodeURIComponent(state.lastId)}` : "";
      const res = await api("GET", `conversations/${encodeURIComponent(conv.id)}/messages${after}`, undefined, {
        etag: live.etag,
      });
      if ([401, 403, 404].includes(res.status)) return; // the server no longer knows it: stop asking
      if (res.status !== 304) {
        if (!res.ok) throw await apiError(res);
        const body = await res.json();
        if (state.conv !== conv) return;
        // A turn was sent while this poll was out: its answer sets the ids, so this answer could
        // show the customer's turn twice. Drop it (and its ETag); the next poll asks again.
        if (state.busy) return livePoll();
        live.etag = res.headers.get("ETag") || "";
        applyLive(body);
      }
    } catch {
      wait = IDLE_MS; // offline or failing: ask again, slowly
    }
    if (state.conv === conv) livePoll(wait);
  }

  function applyLive(body) {
    let arrived = false;
    for (const m of body.messages || []) {
      const id = String(m.id);
      if (ui.log.querySelector(`.rz-row[data-id="${CSS.escape(id)}"]`)) continue;
      const role = m.role === "user" || m.role === "agent" ? m.role : "assistant";
      addMessage(role, m.content || "", id, m.author || (role === "agent" ? body.agent : null));
      arrived = true;
    }
    if (body.status) live.status = body.status;
    setOwner(body.handled_by || state.handledBy, body.agent);
    if (arrived) scrollToEnd(!state.userScrolled);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && live.timer) livePoll(0); // back in view: catch up now
  });

  // --- Start -------------------------------------------------------------------------------
  // A fetch refused by CORS fails exactly like a network error. An opaque (no-cors) request tells the
  // two apart: if it goes through, the server is up and refuses this page's origin. Say so, once.
  let corsChecked = false;
  async function diagnoseCors() {
    const origin = location.origin;
    if (corsChecked || new URL(API, location.href).origin === origin) return;
    corsChecked = true;
    try {
      await fetch(`${API}/api/support/widget/config`, { mode: "no-cors", credentials: "omit" });
    } catch {
      return; // unreachable: a network problem, not CORS
    }
    console.error(
      `Rezvo Support: ${API} is up but does not allow this page's origin, ${origin}. ` +
        `Add ${origin} to CORS_ALLOWED_ORIGINS in the support server's settings (.env) and restart it.`,
    );
  }

  // A verified customer's earlier conversations (POST widget/history, authorised by the user hash only).
  async function showPast() {
    if (!data.userId || !data.userHash) return;
    let rows = [];
    try {
      const res = await api("POST", "widget/history", { user_id: data.userId, user_hash: data.userHash }, { token: false });
      if (res.ok) rows = (await res.json()).results || [];
    } catch {
      return; // history is a nicety: the chat works without it
    }
    if (!rows.length || state.conv || !ui || ui.log.querySelector(".rz-past")) return;
    const items = rows.map((c) =>
      h("li", {}, h("span", { text: c.summary || "(no message)" }), " ",
        h("time", { class: "rz-past-date", datetime: c.created_at, text: new Date(c.created_at).toLocaleDateString() })),
    );
    ui.log.append(
      h("section", { class: "rz-past", "aria-label": "Your earlier conversations" },
        h("p", { class: "rz-past-title", text: "Your earlier conversations" }), h("ul", {}, items)),
    );
  }

  async function start() {
    let server = null;
    try {
      const venue = data.businessId ? `?business_id=${encodeURIComponent(data.businessId)}` : "";
      const res = await fetch(`${API}/api/support/widget/config${venue}`, { credentials: "omit" });
      if (res.ok) server = await res.json();
    } catch {
      diagnoseCors(); // offline or blocked: the defaults and data attributes still make a working widget
    }
    state.config = mergeConfig(server);
    build();
  }

  window.RezvoSupport = {
    open: () => open(),
    close: () => close(),
    reset: () => ui && startNew(),
  };

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start, { once: true });
})();
