// citizenbot web chat widget: one <script> tag, no framework.
//
//   <script src="https://HOST/webchat/widget.js"
//           data-config='{"title": "12345 在线客服", "primaryColor": "#b71c1c"}'></script>
//
// Speaks Rasa's socket.io protocol (session_request / session_confirm /
// user_uttered / bot_uttered). The session id the server confirms is kept in
// localStorage; the conversation itself is fetched back from the server's
// tracker (POST /webhooks/webchat/history) on every (re)connect, so a reload,
// a second tab or a reconnect after a network cut shows the same history.
// Messages typed while offline wait in an outbox and go out on reconnect.
import { io } from "socket.io-client";
import css from "./widget.css";
import { TEXTS } from "./texts.js";

const SCRIPT = document.currentScript;
const STORE = "citizenbot.webchat.";

const DEFAULTS = {
  server: SCRIPT && SCRIPT.src ? new URL(SCRIPT.src).origin : window.location.origin,
  socketPath: "/socket.io",
  historyPath: "/webhooks/webchat/history",
  title: null,
  primaryColor: "#b71c1c",
  textColor: "#ffffff",
  language: "zh-CN",
  open: false,
  elderly: false,
};

const storage = {
  get(key) {
    try { return window.localStorage.getItem(STORE + key); } catch (_) { return null; }
  },
  set(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(STORE + key);
      else window.localStorage.setItem(STORE + key, value);
    } catch (_) { /* private mode: the session lasts as long as the page */ }
  },
};

/** Build an element: h("button", {class: "x", "aria-label": "y"}, child, …). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) el.append(child);
  return el;
}

const SAFE_URL = /^(https?:\/\/|\/(?!\/))/i;
const LINK = /\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>"'，。）)]+)/g;

/** Text with [title](url) and bare http(s) links as DOM nodes — never innerHTML. */
function richText(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const [whole, title, target, bare] = match;
    const url = target || bare;
    if (!SAFE_URL.test(url)) continue;
    fragment.append(text.slice(last, match.index));
    fragment.append(h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, title || url));
    last = match.index + whole.length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

/** Normalise a bot message: Rasa's socket.io shape, or our history's. */
function botParts(message) {
  const buttons = (message.quick_replies || message.buttons || [])
    .map((b) => ({ title: String(b.title || b.payload || ""), payload: String(b.payload || b.title || "") }));
  let image = message.image || null;
  const attachment = message.attachment;
  if (!image && attachment && attachment.type === "image") image = attachment.payload && attachment.payload.src;
  let text = message.text || "";
  if (!text && message.custom && typeof message.custom.text === "string") text = message.custom.text;
  return { text, buttons, image };
}

class Widget {
  constructor(config) {
    this.config = { ...DEFAULTS, ...config };
    this.t = TEXTS[this.config.language] || TEXTS[this.config.language.split("-")[0]] || TEXTS["zh-CN"];
    this.sessionId = storage.get("session");
    this.outbox = JSON.parse(storage.get("outbox") || "[]");
    this.elderly = storage.get("elderly") === null ? !!this.config.elderly : storage.get("elderly") === "1";
    this.render();
    this.connect();
    if (this.config.open || storage.get("open") === "1") this.open(false);
  }

  // -- DOM ------------------------------------------------------------------------------
  render() {
    const t = this.t;
    this.host = h("div", { id: "citizenbot-webchat" });
    const shadow = this.host.attachShadow({ mode: "open" });
    shadow.append(h("style", {}, css));

    this.launcher = h("button", {
      class: "cb-launcher", type: "button", "aria-haspopup": "dialog", "aria-expanded": "false",
      onclick: () => this.open(true),
    });
    this.launcher.innerHTML =
      '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16v12H7l-3 3z"/></svg>';
    this.launcher.append(h("span", {}, t.launcher));

    this.titleEl = h("h2", { class: "cb-title", id: "cb-title" }, this.config.title || t.title);
    this.elderlyButton = h("button", {
      class: "cb-elderly-toggle", type: "button", "aria-pressed": "false",
      onclick: () => this.setElderly(!this.elderly),
    }, t.elderly);
    const close = h("button", {
      class: "cb-close", type: "button", "aria-label": t.close, title: t.close,
      onclick: () => this.close(),
    }, "×");
    this.status = h("div", { class: "cb-status", role: "status", hidden: true });
    this.log = h("div", { class: "cb-log", role: "log", "aria-label": t.log, tabindex: "0" });
    this.typing = h("div", { class: "cb-typing", hidden: true },
      h("span", { class: "cb-dots", "aria-hidden": "true" }, h("span", {}, "●"), h("span", {}, "●"), h("span", {}, "●")),
      " ", t.typing);
    this.replies = h("div", { class: "cb-replies", role: "group", "aria-label": t.replies });
    this.input = h("textarea", {
      class: "cb-input", id: "cb-input", rows: "1", maxlength: "2000",
      placeholder: t.placeholder, "aria-label": t.placeholder,
    });
    this.input.value = storage.get("draft") || "";
    this.input.addEventListener("input", () => storage.set("draft", this.input.value || null));
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    const form = h("form", { class: "cb-form", onsubmit: (event) => { event.preventDefault(); this.submit(); } },
      this.input, h("button", { class: "cb-send", type: "submit" }, t.send));

    this.panel = h("section", {
      class: "cb-panel", role: "dialog", "aria-labelledby": "cb-title", hidden: true,
    }, h("div", { class: "cb-header" }, this.titleEl, this.elderlyButton, close),
      this.status, this.log, this.typing, this.replies, form);
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });

    this.root = h("div", { class: "cb-root", lang: this.config.language }, this.launcher, this.panel);
    this.root.style.setProperty("--cb-primary", this.config.primaryColor);
    this.root.style.setProperty("--cb-on-primary", this.config.textColor);
    shadow.append(this.root);
    this.setElderly(this.elderly);
    document.body.append(this.host);
  }

  open(focus) {
    this.panel.hidden = false;
    this.launcher.hidden = true;
    this.launcher.setAttribute("aria-expanded", "true");
    storage.set("open", "1");
    this.scrollDown();
    if (focus) this.input.focus();
  }

  close() {
    this.panel.hidden = true;
    this.launcher.hidden = false;
    this.launcher.setAttribute("aria-expanded", "false");
    storage.set("open", null);
    this.launcher.focus();
  }

  setElderly(on) {
    this.elderly = on;
    this.root.classList.toggle("cb-elderly", on);
    this.root.style.setProperty("--cb-primary", on ? "#0b2e6f" : this.config.primaryColor);
    this.root.style.setProperty("--cb-on-primary", on ? "#ffffff" : this.config.textColor);
    this.elderlyButton.setAttribute("aria-pressed", on ? "true" : "false");
    storage.set("elderly", on ? "1" : "0");
  }

  scrollDown() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  addMessage(sender, parts, options = {}) {
    const t = this.t;
    const item = h("div", { class: `cb-msg cb-msg-${sender}` },
      h("span", { class: "cb-sr" }, sender === "user" ? t.youSaid : t.botSaid));
    if (parts.text) item.append(richText(parts.text));
    if (parts.image && SAFE_URL.test(parts.image)) {
      item.append(h("img", { src: parts.image, alt: parts.alt || t.image, loading: "lazy" }));
    }
    if (options.pending) {
      item.classList.add("cb-msg-pending");
      item.dataset.note = t.pending;
    }
    this.log.append(item);
    this.scrollDown();
    return item;
  }

  showReplies(buttons) {
    this.replies.replaceChildren(...buttons.map((button) => h("button", {
      class: "cb-reply", type: "button",
      onclick: () => this.send(button.payload, button.title),
    }, button.title)));
  }

  setConnected(connected) {
    this.status.hidden = connected;
    this.status.textContent = connected ? "" : this.t.offline;
  }

  // -- protocol ---------------------------------------------------------------------------
  connect() {
    this.socket = io(this.config.server, {
      path: this.config.socketPath,
      transports: ["websocket", "polling"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
    });
    this.socket.on("connect", () => {
      this.socket.emit("session_request", { session_id: this.sessionId });
    });
    this.socket.on("session_confirm", (confirmed) => {
      const id = typeof confirmed === "string" ? confirmed : confirmed && confirmed.session_id;
      if (!id) return;
      this.sessionId = id;
      storage.set("session", id);
      this.restore().finally(() => {
        this.setConnected(true);
        this.flush();
      });
    });
    this.socket.on("disconnect", () => this.setConnected(false));
    this.socket.on("connect_error", () => this.setConnected(false));
    this.socket.on("bot_uttered", (message) => this.receive(message));
    this.socket.on("user_echo", (message) => {
      if (message && message.text) this.addMessage("user", { text: message.text });
    });
    this.socket.on("bot_typing", (state) => this.setTyping(!!(state && state.typing)));
  }

  /** Replace the log with the server's record of this session (plus unsent messages). */
  async restore() {
    let messages = [];
    try {
      const response = await fetch(this.config.server + this.config.historyPath, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ session_id: this.sessionId }),
      });
      if (!response.ok) return;
      messages = (await response.json()).messages || [];
    } catch (_) {
      return; // keep what is on screen; the next reconnect tries again
    }
    this.log.replaceChildren();
    this.addMessage("bot", { text: this.t.welcome }); // the widget's own greeting, always first
    let lastButtons = [];
    for (const message of messages) {
      if (message.sender === "user") {
        this.addMessage("user", { text: message.text });
        lastButtons = [];
      } else {
        const parts = botParts(message);
        this.addMessage("bot", parts);
        lastButtons = parts.buttons;
      }
    }
    this.showReplies(lastButtons);
    for (const pending of this.outbox) pending.item = this.addMessage("user", { text: pending.display }, { pending: true });
  }

  receive(message) {
    if (!message) return;
    const parts = botParts(message);
    if (!parts.text && !parts.image) return;
    this.addMessage("bot", parts);
    this.showReplies(parts.buttons);
  }

  setTyping(on) {
    clearTimeout(this.typingTimer);
    this.typing.hidden = !on;
    // never spin forever if the "off" event is lost with the connection
    if (on) this.typingTimer = setTimeout(() => { this.typing.hidden = true; }, 30000);
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    this.send(text, text);
    this.input.value = "";
    storage.set("draft", null);
    this.input.focus();
  }

  /** Queue a message and send it when connected; it survives a cut connection. */
  send(payload, display) {
    const entry = { id: `${Date.now()}-${Math.random().toString(36).slice(2)}`, payload, display };
    this.showReplies([]);
    entry.item = this.addMessage("user", { text: display }, { pending: true });
    this.outbox.push(entry);
    this.saveOutbox();
    this.flush();
  }

  flush() {
    if (!this.socket.connected || !this.sessionId || this.status.hidden === false) return;
    while (this.outbox.length) {
      const entry = this.outbox.shift();
      const metadata = { language: this.config.language };
      if (entry.display !== entry.payload) metadata.display = entry.display;
      this.socket.emit("user_uttered", { message: entry.payload, session_id: this.sessionId, metadata });
      if (entry.item) {
        entry.item.classList.remove("cb-msg-pending");
        delete entry.item.dataset.note;
      }
      this.setTyping(true);
    }
    this.saveOutbox();
  }

  saveOutbox() {
    storage.set("outbox", this.outbox.length
      ? JSON.stringify(this.outbox.map(({ id, payload, display }) => ({ id, payload, display })))
      : null);
  }
}

function configFromScript() {
  if (!SCRIPT) return {};
  const raw = SCRIPT.getAttribute("data-config");
  if (!raw) return {};
  try { return JSON.parse(raw); } catch (error) {
    console.error("citizenbot webchat: data-config is not JSON", error);
    return {};
  }
}

const api = {
  instance: null,
  /** Start the widget (once per page); later calls return the running one. */
  init(config = {}) {
    if (!api.instance) api.instance = new Widget({ ...(window.CitizenChatConfig || {}), ...config });
    return api.instance;
  },
  open() { if (api.instance) api.instance.open(true); },
  close() { if (api.instance) api.instance.close(); },
};
window.CitizenChat = api;

if (!SCRIPT || SCRIPT.getAttribute("data-auto") !== "false") {
  const start = () => api.init(configFromScript());
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}
