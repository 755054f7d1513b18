/* 在线会话: the queue and the conversation refresh themselves by polling (no websockets).
 *
 * Every POLL seconds: GET /api/live (the queue) and, with a session open,
 * GET /api/live/{id}?after=<last message id> (its new messages and the delivery
 * state of staff messages). Forms with data-live are sent as JSON with the CSRF
 * header; without JavaScript they are plain POST forms. Both calls go through
 * http.js. Citizens' text is only ever set with textContent.
 */
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) return;
  var getJson = window.citizenbotHttp.getJson;  // http.js, loaded by base.html
  var post = window.citizenbotHttp.post;
  var poll = Math.max(1, Number(root.dataset.poll || 2)) * 1000;
  var selected = root.dataset.selected || "";
  var me = root.dataset.me || "";
  var canServe = !!root.dataset.canServe;
  var statusName = { waiting: "等待接入", taken: "接待中", ended: "已结束" };
  var channelName = { webchat: "网页", wechat: "微信", telegram: "Telegram", rest: "接口" };
  var baseTitle = document.title;
  var lastId = 0;
  var busy = false;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function hhmm(iso) {
    var m = /T(\d{2}:\d{2})/.exec(iso || "");
    return m ? m[1] : "";
  }

  function flash(text, kind) {
    var box = document.getElementById("flash");
    if (!box) return;
    var p = el("p", "flash " + (kind || "error"), text);
    box.replaceChildren(p);
  }

  /* -- the queue ------------------------------------------------------------------- */
  function drawList(sessions) {
    var list = document.getElementById("live-sessions");
    if (!list) return;
    var items = [];
    var waiting = 0;
    sessions.forEach(function (s) {
      if (s.status === "waiting") waiting += 1;
      var li = el("li", "session status-" + s.status + (String(s.id) === selected ? " selected" : ""));
      li.dataset.id = s.id;
      var a = el("a");
      a.href = "/live?s=" + s.id;
      var label = statusName[s.status] || s.status;
      if (s.status === "waiting" && s.seconds_left !== null) {
        label += "（剩 " + Math.floor(s.seconds_left / 60) + ":" + String(s.seconds_left % 60).padStart(2, "0") + "）";
      }
      a.appendChild(el("span", "live-status", label));
      a.appendChild(el("span", "tag", channelName[s.channel] || s.channel));
      if (s.taken_by) a.appendChild(el("span", "tag", s.taken_by));
      if (s.department) a.appendChild(el("span", "tag dept", s.department));
      a.appendChild(el("span", "request", s.request || "（还没说要办什么）"));
      li.appendChild(a);
      items.push(li);
    });
    if (!items.length) items.push(el("li", "empty", root.dataset.msgNone));
    list.replaceChildren.apply(list, items);
    document.title = (waiting ? "(" + waiting + ") " : "") + baseTitle;
  }

  /* -- the open conversation ------------------------------------------------------- */
  function who(m) {
    if (m.speaker === "citizen") return "市民";
    if (m.speaker === "bot") return "机器人";
    if (m.speaker === "staff") return m.author || "工作人员";
    return "系统";
  }

  function deliveryText(m) {
    if (m.delivery === "sent") return root.dataset.msgSent;
    if (m.delivery === "failed") return root.dataset.msgFailed + (m.error ? "（" + m.error + "）" : "");
    if (m.delivery === "pending") return root.dataset.msgPending;
    return "";
  }

  function drawDelivery(li, m) {
    var small = li.querySelector(".delivery");
    if (!small) { small = el("small", "delivery"); li.appendChild(small); }
    small.className = "delivery delivery-" + (m.delivery || "");
    small.textContent = deliveryText(m);
    var button = li.querySelector("button.resend");
    if (m.delivery === "failed" && m.author === me && !button) {
      button = el("button", "secondary resend", root.dataset.msgResend);
      button.type = "button";
      button.addEventListener("click", function () {
        button.disabled = true;
        post("/api/live/" + selected + "/resend/" + m.id, {}).then(refreshSession, function () { button.disabled = false; });
      });
      li.appendChild(button);
    } else if (m.delivery !== "failed" && button) {
      button.remove();
    }
  }

  function drawMessage(list, m) {
    var existing = list.querySelector('li[data-id="' + m.id + '"]');
    if (existing) {
      if (m.speaker === "staff") drawDelivery(existing, m);
      return;
    }
    var li = el("li", "speaker-" + m.speaker + (m.flag ? " flag-" + m.flag : ""));
    li.dataset.id = m.id;
    li.appendChild(el("span", "who", who(m)));
    li.appendChild(el("span", "text", m.text));
    li.appendChild(el("small", "when", hhmm(m.at)));
    if (m.speaker === "staff") drawDelivery(li, m);
    list.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }

  function show(node, visible) { if (node) node.hidden = !visible; }

  function drawSession(s) {
    var list = document.getElementById("live-messages");
    if (!list) return;
    s.messages.forEach(function (m) {
      drawMessage(list, m);
      if (m.id > lastId) lastId = m.id;
    });
    var status = document.getElementById("live-status");
    if (status) status.textContent = (statusName[s.status] || s.status) + (s.taken_by && s.status === "taken" ? "：" + s.taken_by : "");
    var request = document.getElementById("live-request");
    if (request && s.request) request.textContent = s.request;
    if (!canServe) return;
    show(document.querySelector(".take-form"), s.status === "waiting");
    show(document.querySelector(".send-form"), s.status === "taken" && s.taken_by === me);
    show(document.querySelector(".end-forms"), s.status !== "ended");
    show(document.querySelector(".route-form"), s.status !== "ended");
  }

  function refreshSession() {
    if (!selected) return Promise.resolve();
    return getJson("/api/live/" + selected + "?after=" + lastId).then(function (s) { if (s) drawSession(s); });
  }

  function refresh() {
    if (busy) return;
    busy = true;
    Promise.all([
      getJson("/api/live").then(function (j) { if (j) drawList(j.sessions); }),
      refreshSession(),
    ]).catch(function () {}).then(function () { busy = false; });
  }

  (function initialLastId() {
    document.querySelectorAll("#live-messages li[data-id]").forEach(function (li) {
      lastId = Math.max(lastId, Number(li.dataset.id));
    });
  })();

  root.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset.live) return;
    event.preventDefault();
    var button = form.querySelector("button");
    var data = {};
    var select = form.querySelector("select");
    if (select) data[select.name] = select.value;
    var textarea = form.querySelector("textarea");
    if (textarea) {
      data.text = textarea.value;
      if (!data.text.trim()) return;
    }
    if (button) button.disabled = true;
    post(form.dataset.live, data).then(function (result) {
      if (button) button.disabled = false;
      var j = result.json || {};
      if (!result.ok) { flash((j.message || "") + (j.detail ? " " + j.detail : ""), "error"); return; }
      if (textarea) { textarea.value = ""; textarea.focus(); }
      if (j.delivery === "failed") flash(j.message + (j.delivery_error ? "：" + j.delivery_error : ""), "error");
      else if (j.message) flash(j.message, "ok");
      refresh();
    }, function () {
      if (button) button.disabled = false;
      flash(document.body.dataset.msgNetwork, "error");
    });
  });

  /* Enter sends, Shift+Enter starts a new line (as in every chat tool) */
  root.addEventListener("keydown", function (event) {
    if (event.target.tagName !== "TEXTAREA" || event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    var form = event.target.form;
    if (form && form.dataset.live) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  refresh();
  window.setInterval(refresh, poll);
})();
