/* The console's JSON calls, in one place for every page (base.html loads this file
 * before console.js and the pages' own scripts).
 *
 * - citizenbotHttp.getJson(url): GET; the parsed body, or null when the answer is
 *   not a success;
 * - citizenbotHttp.post(url, data): POST ``data`` as JSON with the page's CSRF
 *   token; resolves to { ok, status, json } (json is {} when the body is not JSON)
 *   and rejects only when the network fails, so a refusal can be shown in place.
 * Both send the session cookie (same origin) and ask for JSON.
 */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; });
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

  window.citizenbotHttp = Object.freeze({ getJson: getJson, post: post });
})();
