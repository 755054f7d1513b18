/* 12345 工作台: small progressive enhancements over plain HTML forms.
 *
 * - forms with data-api are sent to the JSON API with fetch (CSRF header); after
 *   a success the page reloads and says what was done (the form's data-done);
 *   a refusal is shown in the form without losing what was typed, a conflict
 *   (409) with who changed what and a button to apply the input on the fresh
 *   version;
 * - what is typed into those forms is kept in sessionStorage (per user, per
 *   form) until it was sent, so a reload or a conflict never loses it;
 * - "show full number" buttons fetch the (audited) contact details;
 * - list pages ask the API every 30 s whether the list changed, a ticket page
 *   whether the ticket did (and offers a reload that keeps what was typed);
 * - the upload form streams the raw file with a progress bar.
 * Every text shown comes from the server (API messages or data attributes):
 * citizens' text is only ever set with textContent, never as HTML.
 */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";  // the upload's XHR
  var body = document.body;
  var post = window.citizenbotHttp.post;  // http.js
  var getJson = window.citizenbotHttp.getJson;

  function showFlash(text, kind) {
    var box = document.getElementById("flash");
    if (!box || !text) return;
    var div = document.createElement("div");
    div.className = "flash " + (kind || "error");
    var p = document.createElement("p");
    p.textContent = text;
    div.appendChild(p);
    box.replaceChildren(div);
    box.scrollIntoView({ block: "nearest" });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  /* ---- drafts: what was typed, until it was sent ---- */
  var store = null;
  try { store = window.sessionStorage; } catch (err) { store = null; }
  var who = body.dataset.user || "";
  var NOTICE = "citizenbot:notice:" + who;

  function draftKey(form, name) {
    return "citizenbot:draft:" + who + ":" + form.getAttribute("action") + ":" + name;
  }
  function draftFields(form) {
    return Array.prototype.filter.call(form.elements, function (f) {
      return f.name && f.name !== "csrf_token" && f.name !== "expected_version" &&
        f.type !== "hidden" && f.type !== "submit" && f.type !== "button" && f.type !== "file";
    });
  }
  function saveDraft(field) {
    var form = field.form;
    if (!store || !who || !form || !form.dataset.api || !field.name) return;
    try {
      if (field.value) store.setItem(draftKey(form, field.name), field.value);
      else store.removeItem(draftKey(form, field.name));
    } catch (err) { /* storage full or off: the form still works */ }
  }
  function dropDraft(form) {
    if (!store || !who) return;
    draftFields(form).forEach(function (f) { store.removeItem(draftKey(form, f.name)); });
  }
  function restoreDrafts() {
    if (!store || !who) return;
    document.querySelectorAll("form[data-api]").forEach(function (form) {
      var restored = false;
      draftFields(form).forEach(function (f) {
        var kept = store.getItem(draftKey(form, f.name));
        if (kept === null || kept === f.value) return;
        if (f.tagName === "SELECT") {
          if (!Array.prototype.some.call(f.options, function (o) { return o.value === kept || o.text === kept; })) return;
        } else if (f.value) {
          return;  // the page already shows what was typed (a refused form, drawn by the server)
        }
        f.value = kept;
        if (f.tagName !== "SELECT") restored = true;
      });
      if (restored && body.dataset.msgDraftRestored) {
        var note = el("p", "small draft-note", body.dataset.msgDraftRestored);
        form.insertBefore(note, form.querySelector("button[type=submit]"));
      }
    });
  }
  document.addEventListener("input", function (e) { if (e.target.form) saveDraft(e.target); });
  document.addEventListener("change", function (e) { if (e.target.form) saveDraft(e.target); });
  restoreDrafts();
  if (store) {
    var notice = store.getItem(NOTICE);
    if (notice) { store.removeItem(NOTICE); showFlash(notice, "ok"); }
  }

  /* ---- a refused action, shown in its form ---- */
  function problemBox(form, j) {
    var old = form.querySelector(".problem");
    if (old) old.remove();
    var conflict = j.error === "conflict";
    var box = el("div", "problem" + (conflict ? " conflict" : ""));
    box.setAttribute("role", "alert");
    box.dataset.code = j.error || "";
    var submit = form.querySelector("button[type=submit]");
    if (!conflict) {
      box.appendChild(el("p", "", j.message || ""));
      form.insertBefore(box, submit);
      return box;
    }
    var title = el("p");
    title.appendChild(el("strong", "", body.dataset.msgConflictTitle));
    box.appendChild(title);
    var changes = j.changes || [];
    if (changes.length) {
      box.appendChild(el("p", "", body.dataset.msgConflictChanges));
      var list = el("ul", "changes");
      changes.forEach(function (c) {
        var li = el("li");
        li.appendChild(el("span", "change-at", c.at || ""));
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "change-who", c.who || ""));
        li.appendChild(document.createTextNode("："));
        li.appendChild(el("span", "change-what", c.what || ""));
        if (c.gist) li.appendChild(document.createTextNode("（" + c.gist + "）"));
        if (c.quote) { li.appendChild(document.createTextNode(" ")); li.appendChild(el("q", "", c.quote)); }
        list.appendChild(li);
      });
      box.appendChild(list);
    }
    var kept = body.dataset.msgConflictKept || "";
    if (!j.can_retry) {
      kept += (body.dataset.msgConflictCannot || "").replace("{action}", submit ? submit.textContent : "");
    }
    box.appendChild(el("p", "", kept));
    var buttons = el("p", "conflict-buttons");
    if (j.can_retry && typeof j.current_version === "number") {
      var apply = el("button", "apply", body.dataset.msgConflictApply);
      apply.type = "button";
      apply.addEventListener("click", function () {
        form.querySelector("input[name=expected_version]").value = String(j.current_version);
        box.remove();
        if (form.requestSubmit) form.requestSubmit(); else form.dispatchEvent(new Event("submit", { cancelable: true, bubbles: true }));
      });
      buttons.appendChild(apply);
    }
    var reload = el("button", "secondary reload", body.dataset.msgConflictReload);
    reload.type = "button";
    reload.addEventListener("click", function () { window.location.reload(); });
    buttons.appendChild(reload);
    box.appendChild(buttons);
    form.insertBefore(box, submit);
    if (submit) submit.hidden = true;  // one way on: apply on the fresh version, or look first
    box.scrollIntoView({ block: "nearest" });
    return box;
  }

  function formObject(form) {
    var data = {};
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token") data[key] = value;
    });
    return data;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("action") === "/logout" && store) {
      // drafts stay with the person who typed them: none is left for the next user of this tab
      Object.keys(store).forEach(function (key) {
        if (key.indexOf("citizenbot:draft:" + who + ":") === 0 || key === NOTICE) store.removeItem(key);
      });
      return;
    }
    if (form.dataset.api) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      post(form.dataset.api, formObject(form)).then(function (result) {
        if (result.ok) {
          dropDraft(form);
          if (store && form.dataset.done) {
            try { store.setItem(NOTICE, form.dataset.done); } catch (err) { /* shown nowhere */ }
          }
          window.location.reload();
          return;
        }
        if (button) { button.disabled = false; button.hidden = false; }
        problemBox(form, result.json || {});
      }, function () {
        if (button) { button.disabled = false; button.hidden = false; }
        problemBox(form, { error: "network", message: body.dataset.msgNetwork });
      });
    } else if (form.dataset.contact) {
      event.preventDefault();
      post(form.dataset.contact, {}).then(function (result) {
        var j = result.json || {};
        if (!result.ok) { showFlash(j.message || "", "error"); return; }
        var number = form.dataset.contact.split("/")[3];
        document.querySelectorAll('[data-phone-for="' + number + '"]').forEach(function (node) {
          node.textContent = j.phone || "";
        });
        form.remove();
        showFlash(form.dataset.done, "ok");
      }, function () { showFlash(body.dataset.msgNetwork, "error"); });
    } else if (form.id === "upload-form" && window.XMLHttpRequest) {
      var input = form.querySelector('input[type=file]');
      var file = input && input.files && input.files[0];
      if (!file) return;
      event.preventDefault();
      if (file.size > Number(form.dataset.maxBytes || 0)) { showFlash(body.dataset.msgTooBig, "error"); return; }
      var bar = document.getElementById("upload-progress");
      var status = document.getElementById("upload-status");
      var format = form.querySelector("select[name=format]").value;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/hotline/upload?name=" + encodeURIComponent(file.name) + "&format=" + encodeURIComponent(format));
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      bar.hidden = false;
      status.textContent = body.dataset.msgUploading;
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
      xhr.onload = function () {
        var j = {};
        try { j = JSON.parse(xhr.responseText); } catch (err) { j = {}; }
        if (xhr.status === 202 && j.url) { window.location.href = j.url; return; }
        showFlash(j.message || String(xhr.status), "error");
      };
      xhr.onerror = function () { showFlash(body.dataset.msgNetwork, "error"); };
      xhr.send(file);
    }
  });

  /* ticket page: has someone changed the ticket since it was drawn? (every 30 s and
     whenever the tab comes back to the front): say so before a form is refused */
  var ticket = document.querySelector(".ticket-page[data-version]");
  var changedBar = document.getElementById("ticket-changed");
  if (ticket && changedBar) {
    var checkTicket = function () {
      if (document.hidden || !changedBar.hidden) return;
      getJson("/api/tickets/" + encodeURIComponent(ticket.dataset.number))
        .then(function (j) {
          if (j && typeof j.version === "number" && String(j.version) !== ticket.dataset.version) {
            changedBar.hidden = false;
          }
        })
        .catch(function () {});
    };
    window.setInterval(checkTicket, 30000);
    window.addEventListener("focus", checkTicket);
    changedBar.addEventListener("click", function (e) {
      if (e.target.tagName === "A") { e.preventDefault(); window.location.reload(); }
    });
  }

  /* list pages: has the list changed since it was drawn? */
  var refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    var shown = refresh.dataset.numbers || "";
    var check = function () {
      getJson(refresh.dataset.refresh)
        .then(function (j) {
          if (!j) return;
          var now = j.items.map(function (t) { return t.number; }).join(",");
          var note = refresh.querySelector(".refresh-note");
          if (note) note.hidden = now === shown;
        })
        .catch(function () {});
    };
    window.setInterval(check, 30000);
    refresh.addEventListener("click", function (e) {
      if (e.target.tagName === "A") { e.preventDefault(); window.location.reload(); }
    });
  }
})();
