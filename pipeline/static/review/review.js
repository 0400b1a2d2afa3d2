// Keyboard shortcuts for the review pages; every action stays a plain form POST without this file.
(function () {
  "use strict";
  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
  }
  function click(selector) {
    var element = document.querySelector(selector);
    if (element && !element.disabled) { element.click(); return true; }
    return false;
  }
  function follow(selector) {
    var link = document.querySelector(selector);
    if (link) { window.location.href = link.href; return true; }
    return false;
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("#queue tr.row"));
  var selected = -1;
  function select(index) {
    if (!rows.length) { return; }
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    rows[selected].scrollIntoView({block: "nearest"});
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var handled = false;
    if (rows.length) {
      if (event.key === "j") { select(selected + 1); handled = true; }
      else if (event.key === "k") { select(selected - 1); handled = true; }
      else if (event.key === "Enter" && selected >= 0) { window.location.href = rows[selected].dataset.href; handled = true; }
    } else if (event.key === "j") { handled = follow("#next"); }
    else if (event.key === "k") { handled = follow("#prev"); }
    else if (event.key === "a") { handled = click("#accept"); }
    else if (event.key === "r") { handled = click("#reject"); }
    else if (event.key === "c") { var comment = document.getElementById("comment"); if (comment) { comment.focus(); handled = true; } }
    else if (/^[1-9]$/.test(event.key)) { handled = click('.label-button[data-key="' + event.key + '"]'); }
    if (handled) { event.preventDefault(); }
  });
})();
