// Draws a device's sensors and its scores with the thresholds from the page's JSON block
// (no inline script): hourly means per sensor; anomaly score (left axis) and fault probability
// (right axis), each threshold a dashed line on its own axis.
"use strict";
(function () {
  var config = { responsive: true, displaylogo: false };
  var margin = { t: 24, r: 56, b: 64, l: 56 };
  function data(element) {
    return JSON.parse(document.getElementById(element.dataset.source).textContent);
  }
  function sensors(element) {
    var device = data(element);
    var traces = Object.keys(device.series).map(function (sensor) {
      var points = device.series[sensor];
      return { x: points.map(function (p) { return p.t; }), y: points.map(function (p) { return p.mean; }),
               name: sensor, mode: "lines+markers", marker: { size: 4 } };
    });
    Plotly.newPlot(element, traces, { margin: margin, xaxis: { type: "date" }, hovermode: "x unified",
                                      yaxis: { title: { text: "hourly mean" } }, legend: { orientation: "h" } }, config);
  }
  function scores(element) {
    var device = data(element);
    var t = device.scores.map(function (s) { return s.t; });
    var traces = [
      { x: t, y: device.scores.map(function (s) { return s.anomaly_score; }), name: "anomaly score",
        mode: "lines+markers", yaxis: "y" },
      { x: t, y: device.scores.map(function (s) { return s.fault_probability; }), name: "fault probability",
        mode: "lines+markers", yaxis: "y2" },
    ];
    function threshold(axis, value, color) {
      return { type: "line", xref: "paper", x0: 0, x1: 1, yref: axis, y0: value, y1: value,
               line: { color: color, width: 1.5, dash: "dash" } };
    }
    function label(axis, value, text, x) {
      return { xref: "paper", x: x, yref: axis, y: value, text: text, showarrow: false, yanchor: "bottom" };
    }
    var th = device.thresholds;
    var layout = {
      margin: margin, xaxis: { type: "date" }, hovermode: "x unified", legend: { orientation: "h", y: -0.25 },
      yaxis: { title: { text: "anomaly score" } },
      yaxis2: { title: { text: "fault probability" }, overlaying: "y", side: "right", range: [0, 1],
               tickmode: "linear", tick0: 0, dtick: 0.25, showgrid: false },
      shapes: [threshold("y", th.anomaly_score, "#b42318"), threshold("y2", th.fault_probability, "#7a5af8")],
      annotations: [label("y", th.anomaly_score, "anomaly threshold " + th.anomaly_score, 0.02),
                    label("y2", th.fault_probability, "fault threshold " + th.fault_probability, 0.98)],
    };
    Plotly.newPlot(element, traces, layout, config);
  }
  document.querySelectorAll(".fleet-sensors").forEach(sensors);
  document.querySelectorAll(".fleet-scores").forEach(scores);
})();
