// The month calendar and the hour grid (templates/_free_time.html) on the booking form:
// choosing a day or a range of hours fills the form's fields instead of reloading the
// page, and says what was chosen through the block's aria-live region. Without this
// script every free day and hour is a link that opens the form with it chosen.
(function () {
  "use strict";

  function announce(box, text) {
    var live = box.querySelector("[data-announce]");
    if (!live) { return; }
    live.textContent = "";
    // A new text after a pause, so that the same words twice are announced twice.
    window.setTimeout(function () { live.textContent = text; }, 60);
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? values[name] : whole;
    });
  }

  function hhmm(minutes) {
    var h = Math.floor(minutes / 60), m = minutes % 60;
    return (h < 10 ? "0" : "") + h + ":" + (m < 10 ? "0" : "") + m;
  }

  function setField(id, value) {
    var field = document.getElementById(id);
    if (!field) { return false; }
    field.value = value;
    field.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  // Links that act as buttons answer Space as well as Enter.
  function pressable(el) {
    el.setAttribute("role", "button");
    el.addEventListener("keydown", function (event) {
      if (event.key === " " || event.key === "Spacebar") {
        event.preventDefault();
        el.click();
      }
    });
  }

  // --- month calendars: a free day sets the form's date.
  Array.prototype.forEach.call(document.querySelectorAll("[data-free-month][data-date-field]"), function (box) {
    var field = document.getElementById(box.dataset.dateField);
    if (!field) { return; }
    var links = box.querySelectorAll("a[data-date]");
    Array.prototype.forEach.call(links, function (link) {
      pressable(link);
      link.setAttribute("aria-pressed", link.dataset.date === field.value ? "true" : "false");
      if (link.dataset.date === field.value) { link.setAttribute("aria-current", "date"); }
      link.addEventListener("click", function (event) {
        event.preventDefault();
        setField(field.id, link.dataset.date);
        Array.prototype.forEach.call(links, function (other) {
          other.removeAttribute("aria-current");
          other.setAttribute("aria-pressed", "false");
        });
        link.setAttribute("aria-current", "date");
        link.setAttribute("aria-pressed", "true");
        announce(box, fill(box.dataset.chosen, { date: link.dataset.label }));
      });
    });
  });

  // --- hour grids: a first hour, then a last hour, fill start and end.
  function initGrid(box) {
    var items = Array.prototype.slice.call(box.querySelectorAll("ol.hours > li"));
    var cells = items.map(function (li) {
      var el = li.querySelector("[data-start]");
      return {
        li: li,
        el: el,
        free: !!el,
        start: el ? parseInt(el.dataset.start, 10) : null,
        end: el ? parseInt(el.dataset.end, 10) : null
      };
    });
    var minimum = parseInt(box.dataset.min, 10) || 60;
    var maximum = parseInt(box.dataset.max, 10) || 1440;
    var first = null; // index of the chosen first hour, while a last one is awaited

    function mark(from, to) {
      cells.forEach(function (cell, i) {
        var chosen = from !== null && i >= from && i <= to;
        cell.li.classList.toggle("chosen", chosen);
        var tag = cell.li.querySelector(".chosen-mark");
        if (chosen && !tag) {
          tag = document.createElement("span");
          tag.className = "chosen-mark";
          tag.textContent = box.dataset.msgChosen;
          (cell.el || cell.li).appendChild(tag);
        } else if (!chosen && tag) {
          tag.parentNode.removeChild(tag);
        }
        if (cell.el && cell.el.tagName === "A") { cell.el.setAttribute("aria-pressed", chosen ? "true" : "false"); }
      });
    }

    function allFree(from, to) {
      for (var i = from; i <= to; i += 1) {
        if (!cells[i].free || (i > from && cells[i].start !== cells[i - 1].end)) { return false; }
      }
      return true;
    }

    function choose(i) {
      var cell = cells[i];
      if (first === null || i < first) {
        // The first hour: the shortest booking from it, until a last hour is chosen.
        var end = cell.start + minimum;
        var last = i;
        while (last < cells.length && cells[last].end < end) { last += 1; }
        if (last >= cells.length || !allFree(i, last)) {
          announce(box, box.dataset.msgShort);
          return;
        }
        first = i;
        setField("first_date", box.dataset.day);
        setField("start_time", hhmm(cell.start));
        setField("end_time", hhmm(end % 1440));
        mark(i, last);
        announce(box, fill(box.dataset.msgStart, { start: hhmm(cell.start), end: hhmm(end) }));
        return;
      }
      var start = cells[first].start;
      if (!allFree(first, i)) {
        announce(box, box.dataset.msgTaken);
        return;
      }
      if (cell.end - start > maximum) {
        announce(box, fill(box.dataset.msgTooLong, { hours: String(maximum / 60) }));
        return;
      }
      if (cell.end - start < minimum) {
        announce(box, box.dataset.msgShort);
        return;
      }
      setField("end_time", hhmm(cell.end % 1440));
      mark(first, i);
      announce(box, fill(box.dataset.msgRange, { start: hhmm(start), end: hhmm(cell.end) }));
      first = null; // the next choice starts a new range
    }

    cells.forEach(function (cell, i) {
      if (!cell.el) { return; }
      if (cell.el.tagName !== "A") {
        // A free hour where the shortest booking does not fit: still a possible last hour.
        cell.el.setAttribute("tabindex", "0");
      }
      pressable(cell.el);
      cell.el.setAttribute("aria-pressed", "false");
      cell.el.addEventListener("click", function (event) {
        event.preventDefault();
        choose(i);
      });
      if (cell.el.tagName !== "A") {
        cell.el.addEventListener("keydown", function (event) {
          if (event.key === "Enter") { event.preventDefault(); choose(i); }
        });
      }
    });
  }

  // Another date typed in the form: the grid of that day, from this same page.
  function followDate(box) {
    var field = document.getElementById("first_date");
    if (!field) { return; }
    field.addEventListener("change", function () {
      var current = document.getElementById(box.id);
      if (!field.value || !current || field.value === current.dataset.day) { return; }
      var url = new URL(window.location.href);
      url.searchParams.set("date", field.value);
      ["start", "end", "month"].forEach(function (name) { url.searchParams.delete(name); });
      window.fetch(url.toString(), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(box.id);
          var shown = document.getElementById(box.id);
          if (!fresh || !shown || fresh.dataset.day !== field.value) { return; }
          shown.parentNode.replaceChild(document.importNode(fresh, true), shown);
          var grid = document.getElementById(box.id);
          initGrid(grid);
          var title = grid.querySelector(".grid-day");
          announce(grid, title ? title.textContent.trim() : "");
        })
        .catch(function () { /* the links and the day chooser still work */ });
    });
  }

  if (document.getElementById("start_time") && document.getElementById("end_time")) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-hour-grid][data-in-form]"), function (box) {
      initGrid(box);
      followDate(box);
    });
  }
}());
