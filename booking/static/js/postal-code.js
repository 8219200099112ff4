// 「住所を入力」 without leaving the page. Without this script the button sends the form and
// the page comes back with the prefecture, city and address filled from the postal code
// (nothing is saved: booking.forms.PostalCodeForm). With it, the same request is made in
// the background and the fields (and the postal code's error, if any) are taken from the
// answer: one rule, on the server, for both. No inline code (CSP script-src 'self').
(function () {
  "use strict";
  if (!window.fetch || !window.FormData || !window.DOMParser) { return; }

  function fill(button) {
    var block = button.closest("[data-postal-code]");
    var form = button.form;
    var names = (block.getAttribute("data-fill") || "").split(" ");
    var data = new FormData(form);
    data.set(button.name, button.value);
    button.disabled = true;
    return fetch(form.getAttribute("action") || window.location.href, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "Accept": "text/html" }
    }).then(function (response) {
      return response.text().then(function (html) { return [response.ok, html]; });
    }).then(function (answer) {
      var page = new DOMParser().parseFromString(answer[1], "text/html");
      var fresh = page.querySelector("[data-postal-code]");
      if (!fresh) { throw new Error("no form"); }
      if (answer[0]) {
        names.forEach(function (name) {
          var from = page.querySelector("[name='" + name + "']");
          var to = form.elements.namedItem(name);
          if (from && to) { to.value = from.value; }
        });
      }
      var message = answer[0] ? block.getAttribute("data-filled") : "";
      var input = block.querySelector("input");
      var typed = input.value;
      block.replaceWith(fresh);  // the field again: its error beside it, or none
      if (!answer[0]) { fresh.querySelector("input").value = typed; }
      fresh.querySelector(".postal-code-status").textContent = message;
      fresh.querySelector(answer[0] ? "button" : "input").focus();
    }).catch(function () {
      form.requestSubmit ? form.requestSubmit(button) : form.submit();  // the page does it
    }).finally(function () {
      button.disabled = false;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-postal-code] button") : null;
    if (!button) { return; }
    event.preventDefault();
    fill(button);
  });
}());
