// The analytics dashboard's charts (Chart.js, vendored): the numbers come from the page's
// <script type="application/json" id="analytics-data">, the labels from the canvases.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("analytics-data");
    if (!source || typeof Chart === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var accent = "#1f5fbf", second = "#c2410c";
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;

    var days = document.getElementById("chart-days");
    new Chart(days, {
      data: {
        labels: data.days,
        datasets: [
          {type: "bar", label: days.dataset.labelPurchases, data: data.purchases,
           backgroundColor: accent, yAxisID: "count"},
          {type: "line", label: days.dataset.labelRevenue, data: data.revenue,
           borderColor: second, backgroundColor: second, pointRadius: 0, yAxisID: "money"}
        ]
      },
      options: {scales: {count: {position: "left", beginAtZero: true},
                         money: {position: "right", beginAtZero: true,
                                 grid: {drawOnChartArea: false}}}}
    });

    var members = document.getElementById("chart-members");
    new Chart(members, {
      data: {
        labels: data.days,
        datasets: [
          {type: "bar", label: members.dataset.labelNew, data: data.new_members,
           backgroundColor: accent},
          {type: "line", label: members.dataset.labelActive, data: data.active_30,
           borderColor: second, backgroundColor: second, pointRadius: 0}
        ]
      },
      options: {scales: {y: {beginAtZero: true}}}
    });

    var locations = document.getElementById("chart-locations");
    new Chart(locations, {
      type: "bar",
      data: {labels: data.locations,
             datasets: [{label: locations.dataset.label, data: data.location_revenue,
                         backgroundColor: accent}]},
      options: {indexAxis: "y", scales: {x: {beginAtZero: true}}}
    });

    var rewards = document.getElementById("chart-rewards");
    new Chart(rewards, {
      type: "bar",
      data: {labels: data.rewards,
             datasets: [{label: rewards.dataset.label, data: data.reward_counts,
                         backgroundColor: second}]},
      options: {indexAxis: "y", scales: {x: {beginAtZero: true, ticks: {precision: 0}}}}
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
