// Draws each model's accuracy chart from the JSON block the page carries (no inline script).
"use strict";
(function () {
  function draw(element) {
    var model = JSON.parse(document.getElementById(element.dataset.source).textContent);
    var days = model.accuracy.map(function (d) { return d.day; });
    var traces = [
      { x: days, y: model.accuracy.map(function (d) { return d.accuracy; }), name: "accuracy",
        mode: "lines+markers", text: model.accuracy.map(function (d) { return "v" + d.version + ", " + d.n + " rows"; }),
        hovertemplate: "%{x}: %{y:.3f} (%{text})<extra></extra>" },
      { x: days, y: model.rolling_average, name: "7-day average", mode: "lines",
        line: { dash: "dash" }, hovertemplate: "%{x}: 7-day %{y:.3f}<extra></extra>" },
    ];
    var shapes = [], annotations = [];
    model.version_changes.forEach(function (change) {
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: change.day, x1: change.day, y0: 0, y1: 1,
                    line: { color: "#8a94a6", width: 1, dash: "dot" } });
      annotations.push({ x: change.day, y: 1, xref: "x", yref: "paper", text: "v" + change.version,
                         showarrow: false, yanchor: "bottom" });
    });
    var layout = { margin: { t: 24, r: 16, b: 40, l: 48 }, yaxis: { title: { text: "accuracy" } },
                   xaxis: { type: "date", tickformat: "%b %d", dtick: 86400000 },
                   shapes: shapes, annotations: annotations, hovermode: "x unified",
                   legend: { orientation: "h" } };
    Plotly.newPlot(element, traces, layout, { responsive: true, displaylogo: false });
  }
  document.querySelectorAll(".mc-chart").forEach(draw);
})();
