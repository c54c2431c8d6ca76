/* The operations dashboard's charts (Chart.js, served from the project) and
   its refresh: the charts' data from /ops/data.json and the tables from
   /ops/tables every few seconds, without reloading the page. Times are drawn
   in Hong Kong time whatever the browser's zone. */
(function () {
  "use strict";
  var script = document.currentScript;
  var REFRESH_MS = 1000 * parseInt(script.dataset.refresh || "15", 10);
  var HK = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Hong_Kong", hour: "2-digit", minute: "2-digit", hour12: false });
  var HK_FULL = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Hong_Kong", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  var COLOURS = {
    total_hkd: "#1c7ed6", stressed_hkd: "#7048e8", cap: "#c92a2a",
    warn_at: "#f59f00", settle_at: "#f76707", halt_at: "#e03131",
    ok: "#4dabf7", over: "#e03131", limit: "#adb5bd", breaks: "#f59f00", fails: "#e03131",
  };

  function hkd(value) {
    var n = Number(value);
    if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(2) + " bn";
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + " M";
    if (Math.abs(n) >= 1e3) return (n / 1e3).toFixed(0) + " k";
    return n.toFixed(0);
  }
  function hkdExact(value) {
    return Number(value).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) + " HKD";
  }
  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  var draw = {
    day: function (d) {
      var day = d.day;
      return {
        type: "line",
        data: {
          datasets: day.datasets.map(function (s) {
            var line = s.key === "total_hkd" || s.key === "stressed_hkd";
            return {
              label: s.label, data: s.data, borderColor: COLOURS[s.key] || "#495057",
              backgroundColor: s.key === "total_hkd" ? "rgba(28,126,214,.12)" : "transparent",
              fill: s.key === "total_hkd", borderWidth: line ? 2 : 1.5, pointRadius: line ? 1.5 : 0,
              borderDash: s.key.endsWith("_at") ? [6, 4] : [], stepped: !line, tension: 0,
            };
          }),
        },
        options: {
          parsing: false,
          interaction: { mode: "nearest", axis: "x", intersect: false },
          scales: {
            x: {
              type: "linear", min: day.start, max: day.end,
              title: { display: true, text: "Hong Kong time" },
              ticks: { maxTicksLimit: 10, callback: function (v) { return HK.format(new Date(v)); } },
            },
            y: { beginAtZero: true, title: { display: true, text: "HKD" }, ticks: { callback: hkd } },
          },
          plugins: {
            legend: { position: "bottom", labels: { boxWidth: 14 } },
            tooltip: {
              callbacks: {
                title: function (items) { return items.length ? HK_FULL.format(new Date(items[0].parsed.x)) + " HKT" : ""; },
                label: function (item) { return item.dataset.label + ": " + hkdExact(item.parsed.y); },
              },
            },
          },
        },
      };
    },
    counterparties: function (d) {
      var c = d.counterparties;
      return {
        type: "bar",
        data: {
          labels: c.labels,
          datasets: [
            { label: "exposure", data: c.exposure, backgroundColor: c.over.map(function (o) { return o ? COLOURS.over : COLOURS.ok; }) },
            { label: "limit", data: c.limit, backgroundColor: COLOURS.limit },
          ],
        },
        options: {
          indexAxis: "y",
          scales: { x: { beginAtZero: true, ticks: { callback: hkd }, title: { display: true, text: "HKD" } } },
          plugins: {
            legend: { position: "bottom", labels: { boxWidth: 14 } },
            tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": " + (item.raw === null ? "no limit" : hkdExact(item.raw)); } } },
          },
        },
      };
    },
    ages: function (d) {
      var a = d.ages;
      return {
        type: "bar",
        data: {
          labels: a.labels,
          datasets: [
            { label: "unresolved breaks", data: a.breaks, backgroundColor: COLOURS.breaks },
            { label: "failed batches", data: a.fails, backgroundColor: COLOURS.fails },
          ],
        },
        options: {
          scales: { x: { stacked: true, title: { display: true, text: "age" } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 14 } } },
        },
      };
    },
    reserve: function (d) {
      var r = d.reserve;
      return {
        type: "bar",
        data: {
          labels: r.labels,
          datasets: [{ label: "HKD", data: r.values, backgroundColor: r.labels.map(function (l) { return l.indexOf("cover-1") === 0 ? "#7048e8" : l === "cap" ? "#495057" : "#37b24d"; }) }],
        },
        options: {
          indexAxis: "y",
          scales: { x: { beginAtZero: true, ticks: { callback: hkd } } },
          plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (item) { return hkdExact(item.raw); } } } },
        },
      };
    },
    cover: function (d) {
      var c = d.cover;
      return {
        type: "bar",
        data: {
          labels: c.labels,
          datasets: [{ label: "% of the attested balance needed", data: c.used, backgroundColor: c.bad.map(function (b) { return b ? COLOURS.over : "#37b24d"; }) }],
        },
        options: {
          indexAxis: "y",
          scales: { x: { beginAtZero: true, suggestedMax: 100, ticks: { callback: function (v) { return v + " %"; } } } },
          plugins: { legend: { display: false } },
        },
      };
    },
  };

  var charts = {};
  function render(data) {
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var name = canvas.dataset.chart;
      if (!draw[name]) return;
      var config = draw[name](data);
      var chart = charts[name];
      if (!chart) {
        charts[name] = new Chart(canvas, config);
      } else {
        chart.data = config.data;
        if (config.options.scales && config.options.scales.x && config.options.scales.x.min !== undefined) {
          chart.options.scales.x.min = config.options.scales.x.min;
          chart.options.scales.x.max = config.options.scales.x.max;
        }
        chart.update("none");
      }
    });
    var b = data.banner;
    var banner = document.getElementById("banner");
    banner.className = "banner " + b.state;
    banner.querySelector(".banner-state").textContent = b.state;
    document.getElementById("banner-headline").textContent = b.headline;
    document.getElementById("banner-figures").textContent =
      b.total + " HKD of an effective cap of " + b.effective_cap + " HKD (" + b.utilisation + ") · cap " + b.cap +
      " HKD · reserve available " + b.reserve_available + " HKD";
    var reasons = document.getElementById("banner-reasons");
    reasons.replaceChildren.apply(reasons, b.reasons.map(function (r) { var li = document.createElement("li"); li.textContent = r; return li; }));
    document.getElementById("day-note").textContent = "peak today " + data.day.peak + " HKD over " + data.day.samples +
      " sample(s); lines: effective cap and the warning, settle and halt thresholds";
    document.getElementById("as-of").textContent = HK_FULL.format(new Date(data.as_of)) + " HKT";
    document.body.dataset.refreshedAt = data.as_of;
  }

  function refresh() {
    var state = document.getElementById("refresh-state");
    Promise.all([
      fetch(script.dataset.dataUrl, { credentials: "same-origin" }).then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); }),
      fetch(script.dataset.tablesUrl, { credentials: "same-origin" }).then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); }),
    ]).then(function (answers) {
      render(answers[0]);
      document.getElementById("tables").innerHTML = answers[1];
      state.textContent = "";
      state.className = "";
    }).catch(function (error) {
      state.textContent = "(last refresh failed: " + error.message + "; retrying)";
      state.className = "failed";
    });
  }

  render(JSON.parse(document.getElementById("dashboard-data").textContent));
  setInterval(refresh, REFRESH_MS);
})();
