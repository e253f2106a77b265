// Draws the Plotly figures the server built: inline ones (data-figure) and fetched ones (data-figure-url).
(function () {
  "use strict";
  var CONFIG = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"]};

  function draw(el, figure) {
    el.textContent = "";
    window.Plotly.newPlot(el, figure.data || [], figure.layout || {}, CONFIG);
  }

  function drawInline(el) {
    var script = el.querySelector("script[type='application/json']");
    if (script) { draw(el, JSON.parse(script.textContent)); }
  }

  function drawFetched(el) {
    var empty = el.getAttribute("data-empty-text") || "No data";
    fetch(el.getAttribute("data-figure-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (body) {
        if (body.figure) {
          draw(el, body.figure);
        } else {
          el.classList.remove("chart");
          el.innerHTML = "";
          var p = document.createElement("p");
          p.className = "text-muted chart-empty";
          p.textContent = empty;
          el.appendChild(p);
        }
      })
      .catch(function (error) {
        el.innerHTML = "";
        var p = document.createElement("p");
        p.className = "text-danger";
        p.textContent = "Could not load the chart (" + error.message + ").";
        el.appendChild(p);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-figure]").forEach(drawInline);
    document.querySelectorAll("[data-figure-url]").forEach(drawFetched);
  });
})();
