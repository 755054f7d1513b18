/* 12345 工作台: small progressive enhancements over plain HTML forms.
 *
 * - forms with data-api are sent to the JSON API with fetch (CSRF header), and
 *   a refusal (e.g. a stale form: 409) is shown without losing what was typed;
 * - "show full number" buttons fetch the (audited) contact details;
 * - list pages ask the API every 30 s whether the list changed;
 * - the upload form streams the raw file with a progress bar.
 * Every text shown comes from the server (API messages or data attributes):
 * citizens' text is only ever set with textContent, never as HTML.
 */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var body = document.body;

  function showFlash(text, kind) {
    var box = document.getElementById("flash");
    if (!box) return;
    var p = document.createElement("p");
    p.className = "flash " + (kind || "error");
    p.textContent = text;
    box.replaceChildren(p);
    box.scrollIntoView({ block: "nearest" });
  }

  function formObject(form) {
    var data = {};
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token") data[key] = value;
    });
    return data;
  }

  function post(url, data) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(data || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        return { ok: response.ok, status: response.status, json: json };
      });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.api) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit], button");
      if (button) button.disabled = true;
      post(form.dataset.api, formObject(form)).then(function (result) {
        if (result.ok) {
          window.location.reload();
          return;
        }
        if (button) button.disabled = false;
        var j = result.json || {};
        showFlash((j.message || "") + (j.detail ? " " + j.detail : ""), "error");
      }, function () {
        if (button) button.disabled = false;
        showFlash(body.dataset.msgNetwork, "error");
      });
    } else if (form.dataset.contact) {
      event.preventDefault();
      post(form.dataset.contact, {}).then(function (result) {
        var j = result.json || {};
        if (!result.ok) { showFlash(j.message || "", "error"); return; }
        var number = form.dataset.contact.split("/")[3];
        document.querySelectorAll('[data-phone-for="' + number + '"]').forEach(function (el) {
          el.textContent = j.phone || "";
        });
        form.remove();
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

  /* list pages: has the list changed since it was drawn? */
  var refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    var shown = refresh.dataset.numbers || "";
    var check = function () {
      fetch(refresh.dataset.refresh, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
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
