// Progressive enhancement of the questionnaire: the form works without this file.
// 1. A search box above the datasets to open filters the list.
// 2. Each "dataset to improve" select gets a search box that filters its options.
// 3. After a refused submission, focus moves to the error summary.
(function () {
  "use strict";
  function normalise(text) {
    return text.toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "");
  }
  function searchBox(id, labelText, onInput) {
    var wrapper = document.createElement("div");
    wrapper.className = "fr-input-group";
    var label = document.createElement("label");
    label.className = "fr-label";
    label.setAttribute("for", id);
    label.innerHTML = labelText;
    var input = document.createElement("input");
    input.className = "fr-input";
    input.type = "search";
    input.id = id;
    input.autocomplete = "off";
    var status = document.createElement("p");
    status.className = "fr-hint-text fr-mt-1v";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    input.addEventListener("input", function () { status.textContent = onInput(normalise(input.value)); });
    wrapper.appendChild(label);
    wrapper.appendChild(input);
    wrapper.appendChild(status);
    return wrapper;
  }
  function count(n) { return n + " résultat" + (n > 1 ? "s" : "") + " / " + n + " result" + (n > 1 ? "s" : ""); }

  document.querySelectorAll("[data-filter-target]").forEach(function (slot) {
    var list = document.getElementById(slot.getAttribute("data-filter-target"));
    var rows = Array.prototype.slice.call(list.querySelectorAll(".dataset-row"));
    slot.appendChild(searchBox("open-search", 'Rechercher un jeu de données <span lang="en">/ Search datasets</span>',
      function (needle) {
        var shown = 0;
        rows.forEach(function (row) {
          var match = normalise(row.getAttribute("data-search")).indexOf(needle) !== -1;
          row.hidden = !match;
          if (match) { shown += 1; }
        });
        return count(shown);
      }));
  });

  document.querySelectorAll("select[data-searchable]").forEach(function (select) {
    var options = Array.prototype.slice.call(select.querySelectorAll("option"));
    var box = searchBox(select.id + "-search",
      'Filtrer la liste <span lang="en">/ Filter the list</span>',
      function (needle) {
        var shown = 0;
        options.forEach(function (option) {
          if (!option.value) { return; }
          var match = normalise(option.textContent).indexOf(needle) !== -1;
          option.hidden = !match;
          option.disabled = !match && !option.selected;
          if (match) { shown += 1; }
        });
        return count(shown);
      });
    var group = select.closest(".fr-select-group");
    group.parentNode.insertBefore(box, group);
  });

  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
