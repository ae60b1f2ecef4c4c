// Conveniences only: the report reads the same without this script.
// Filters step cards, timeline rows and table rows by text, or to problems.
(function () {
  "use strict";
  var tools = document.getElementById("tools");
  var filter = document.getElementById("filter");
  var problems = document.getElementById("problems");
  if (!tools || !filter || !problems) { return; }
  tools.hidden = false;
  function apply() {
    var needle = filter.value.trim().toLowerCase();
    var onlyProblems = problems.checked;
    var problemIds = {};
    document.querySelectorAll("article.step.problem").forEach(function (card) {
      problemIds[card.getAttribute("data-step")] = true;
    });
    document.querySelectorAll("main [data-step]").forEach(function (el) {
      var id = el.getAttribute("data-step") || "";
      var text = el.textContent.toLowerCase();
      var show = (!needle || text.indexOf(needle) >= 0 || id.toLowerCase().indexOf(needle) >= 0) &&
        (!onlyProblems || problemIds[id] === true);
      el.hidden = !show;
    });
  }
  filter.addEventListener("input", apply);
  problems.addEventListener("change", apply);
}());
