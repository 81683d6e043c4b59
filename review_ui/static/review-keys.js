/* Keyboard shortcuts of the review pages (listed on each page in "_shortcuts.html").
 *
 * Nothing here decides on its own: a key moves, focuses or opens, and the reviewer's Enter (or
 * Ctrl+Enter in a reason box) submits the same form a click would, so every decision still goes
 * through the server's checks and, for reject and send back, its confirmation page.
 * Loaded as a file (the Content-Security-Policy allows no inline script). */
(function () {
  "use strict";

  function typing(el) {
    return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function follow(selector) {
    var link = document.querySelector(selector);
    if (!link) { return false; }
    link.click();
    return true;
  }

  function focusOn(selector) {
    var el = document.querySelector(selector);
    if (!el) { return false; }
    el.focus();
    if (el.scrollIntoView) { el.scrollIntoView({block: "center"}); }
    return true;
  }

  function moveRow(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("[data-queue-row] a.review-link"));
    if (!links.length) { return false; }
    var at = links.indexOf(document.activeElement);
    var next = at < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, at + step));
    links[next].focus();
    links[next].scrollIntoView({block: "nearest"});
    return true;
  }

  function toggleZoom() {
    var views = document.querySelector(".views");
    if (!views) { return false; }
    views.classList.toggle("zoomed");
    return true;
  }

  function toggleLegend() {
    var legend = document.querySelector("details.shortcuts");
    if (!legend) { return false; }
    legend.open = !legend.open;
    return true;
  }

  var page = document.body.getAttribute("data-keys");
  var keys = page === "queue" ? {
    "j": function () { return moveRow(1); },
    "k": function () { return moveRow(-1); },
    "n": function () { return follow("a[rel='next']"); },
    "p": function () { return follow("a[rel='prev']"); },
    "/": function () { return focusOn("#queue-q"); },
    "?": toggleLegend
  } : page === "item" ? {
    "j": function () { return follow("a[rel='next']"); },
    "k": function () { return follow("a[rel='prev']"); },
    "u": function () { return follow("a[rel='up']"); },
    "a": function () { return focusOn(".decide-approve button[type=submit]"); },
    "r": function () { return focusOn("#reject-reason"); },
    "s": function () { return focusOn("#send-back-reason"); },
    "z": toggleZoom,
    "?": toggleLegend
  } : page === "confirm" ? {
    "y": function () { return focusOn("button.confirm-yes"); },
    "e": function () { return focusOn("button.confirm-edit"); },
    "?": toggleLegend
  } : {};

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (typing(target)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form) {
        event.preventDefault();
        target.form.requestSubmit();
      } else if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey || event.isComposing) { return; }
    var action = keys[event.key];
    if (action && action()) { event.preventDefault(); }
  });
})();
