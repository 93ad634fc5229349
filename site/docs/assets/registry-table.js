/* The registry table: filter by domain, architecture and text; sort by any column.
   No dependencies and no requests: the rows are already in the page. The filter is kept in
   the address (#arch=dit&domain=info) so that a filtered table can be linked to. */
(function () {
  "use strict";

  function cellValue(row, index) {
    var cell = row.cells[index];
    return cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
  }

  function readHash() {
    var wanted = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var pair = part.split("=");
      if (pair.length === 2) {
        wanted[decodeURIComponent(pair[0])] = decodeURIComponent(pair[1]);
      }
    });
    return wanted;
  }

  function setup() {
    var table = document.getElementById("registry-table");
    if (!table || table.getAttribute("data-ready")) {
      return;
    }
    table.setAttribute("data-ready", "1");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var selects = Array.prototype.slice.call(document.querySelectorAll("#registry-filters select"));
    var text = document.getElementById("filter-text");
    var counter = document.getElementById("registry-count");

    function apply(writeHash) {
      var needle = text.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (row) {
        var visible = selects.every(function (select) {
          return !select.value || row.getAttribute("data-" + select.name) === select.value;
        });
        if (visible && needle) {
          visible = row.textContent.toLowerCase().indexOf(needle) !== -1;
        }
        row.hidden = !visible;
        shown += visible ? 1 : 0;
      });
      counter.textContent = shown + " of " + rows.length + " shown";
      if (writeHash) {
        var parts = selects.filter(function (s) { return s.value; }).map(function (s) {
          return encodeURIComponent(s.name) + "=" + encodeURIComponent(s.value);
        });
        var address = location.pathname + location.search + (parts.length ? "#" + parts.join("&") : "");
        history.replaceState(null, "", address);
      }
    }

    function fromHash() {
      var wanted = readHash();
      selects.forEach(function (select) {
        var value = wanted[select.name] || "";
        var known = Array.prototype.some.call(select.options, function (o) { return o.value === value; });
        select.value = known ? value : "";
      });
      apply(false);
    }

    function sortBy(header, index) {
      var numeric = header.getAttribute("data-sort") === "number";
      var ascending = header.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
        cell.removeAttribute("aria-sort");
      });
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      rows.sort(function (a, b) {
        var x = cellValue(a, index);
        var y = cellValue(b, index);
        var order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }

    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      var button = header.querySelector("button");
      button.addEventListener("click", function () { sortBy(header, index); });
    });
    selects.forEach(function (select) {
      select.addEventListener("change", function () { apply(true); });
    });
    text.addEventListener("input", function () { apply(false); });
    window.addEventListener("hashchange", fromHash);
    fromHash();
  }

  if (typeof document$ !== "undefined") {
    document$.subscribe(setup); // Material's page-load signal
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
