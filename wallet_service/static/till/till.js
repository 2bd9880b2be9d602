/* The staff till: sign in with a PIN, scan or type a card, post one action.
 *
 * Every action carries an idempotency key made here, kept while the action is retried, so a
 * retry after a timeout never credits twice. The page says what it knows: "sending" while
 * the request is out, "done" once the service answered, "not sent — retry" when no answer
 * came. Nothing is queued for later: an action is sent now, or the staff retries it.
 */
(function () {
  "use strict";

  var W = JSON.parse(document.getElementById("till-words").textContent);
  var LANG = document.documentElement.lang || "en";
  var TIMEOUT_MS = 10000;
  var FORMATS = ["qr_code", "pdf417", "aztec", "code_128"];
  var csrf = "";
  var staffId = null;
  var member = null;
  var pending = null; // {body, key} of the action on screen, until it is done
  var scanning = false;
  var stream = null;

  function $(id) { return document.getElementById(id); }

  function show(name) {
    ["register", "pin", "scan", "member", "result"].forEach(function (s) {
      $("screen-" + s).hidden = s !== name;
    });
    if (name === "scan") { startCamera(); } else { stopCamera(); }
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) { return "till-" + crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "till-" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function net(message) {
    var el = $("net");
    el.textContent = message || "";
    el.hidden = !message;
  }

  /* One call to the service: resolves to {status, body}; rejects only when no answer came
   * (offline, timeout). */
  function call(method, path, body, headers) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, TIMEOUT_MS);
    var h = {"Accept": "application/json", "X-CSRF-Token": csrf};
    if (body !== undefined) { h["Content-Type"] = "application/json"; }
    Object.keys(headers || {}).forEach(function (k) { h[k] = headers[k]; });
    return fetch(path, {
      method: method, headers: h, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body), signal: controller.signal
    }).then(function (r) {
      clearTimeout(timer);
      return r.json().catch(function () { return {}; }).then(function (b) {
        return {status: r.status, body: b};
      });
    }, function (e) { clearTimeout(timer); throw e; });
  }

  function problemText(body) {
    return (body && (body.message || body.detail || body.title)) || "";
  }

  /* --- who is here ------------------------------------------------------------------ */

  function loadState() {
    return call("GET", "/till/api/state").then(function (r) {
      net("");
      csrf = r.body.csrf;
      if (!r.body.device) { show("register"); return; }
      $("where").textContent = "· " + (r.body.device.location || r.body.device.name);
      renderStaff(r.body.staff || []);
      if (r.body.user) { show("scan"); } else { show("pin"); }
    }, function () { net(W.offline); });
  }

  function renderStaff(staff) {
    var box = $("staff");
    box.textContent = "";
    staff.forEach(function (s, i) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "choice";
      b.setAttribute("role", "radio");
      b.setAttribute("aria-checked", "false");
      b.textContent = s.label;
      b.dataset.id = s.id;
      b.addEventListener("click", function () { pickStaff(b); });
      box.appendChild(b);
      if (staff.length === 1 && i === 0) { pickStaff(b); }
    });
  }

  function pickStaff(button) {
    staffId = Number(button.dataset.id);
    Array.prototype.forEach.call($("staff").children, function (b) {
      b.setAttribute("aria-checked", String(b === button));
    });
    $("pin").focus();
  }

  $("register-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = ev.target;
    var err = f.querySelector(".error");
    call("POST", "/till/api/device", {
      email: f.email.value, password: f.password.value,
      location_id: Number(f.location_id.value), name: f.name.value
    }).then(function (r) {
      if (r.status === 201) { f.reset(); loadState(); } else { err.textContent = problemText(r.body); }
    }, function () { err.textContent = W.offline; });
  });

  $("pin-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var err = ev.target.querySelector(".error");
    if (staffId === null) { err.textContent = W.who; return; }
    call("POST", "/till/api/sign-in", {user_id: staffId, pin: $("pin").value}).then(function (r) {
      $("pin").value = "";
      if (r.status === 200) { err.textContent = ""; show("scan"); return; }
      if (r.body.locked_until) {
        err.textContent = W.locked.replace("{time}",
          new Date(r.body.locked_until).toLocaleTimeString(LANG, {hour: "2-digit", minute: "2-digit"}));
      } else if (r.body.attempts_left !== undefined) {
        err.textContent = W.wrong_pin.replace("{n}", r.body.attempts_left);
      } else {
        err.textContent = problemText(r.body);
      }
    }, function () { err.textContent = W.offline; });
  });

  $("sign-out").addEventListener("click", function () {
    call("POST", "/till/api/sign-out", {}).then(loadState, function () { net(W.offline); });
  });

  /* --- keypads ---------------------------------------------------------------------- */

  Array.prototype.forEach.call(document.querySelectorAll(".keypad"), function (pad) {
    var input = $(pad.dataset.for);
    var keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9",
                pad.dataset.decimal ? "," : "C", "0", "⌫"];
    keys.forEach(function (k) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = k;
      if (k === "⌫") { b.setAttribute("aria-label", "backspace"); }
      if (k === "C") { b.setAttribute("aria-label", "clear"); }
      b.addEventListener("click", function () {
        if (k === "⌫") { input.value = input.value.slice(0, -1); }
        else if (k === "C") { input.value = ""; }
        else if (k === "," ) { if (!/[.,]/.test(input.value)) { input.value += ","; } }
        else { input.value += k; }
        input.dispatchEvent(new Event("input"));
      });
      pad.appendChild(b);
    });
  });

  /* --- finding the customer --------------------------------------------------------- */

  function detector() {
    if ("BarcodeDetector" in window) {
      return window.BarcodeDetector.getSupportedFormats().then(function (supported) {
        var wanted = FORMATS.filter(function (f) { return supported.indexOf(f) >= 0; });
        if (wanted.length) { return new window.BarcodeDetector({formats: wanted}); }
        return polyfill();
      });
    }
    return Promise.resolve(polyfill());
  }

  function polyfill() {
    var api = window.BarcodeDetectionAPI;
    // The reader's WebAssembly is served from here, never from the package's default CDN.
    api.prepareZXingModule({
      overrides: {
        locateFile: function (path, prefix) {
          return path.endsWith(".wasm") ? "/static/vendor/barcode-detector/" + path : prefix + path;
        }
      }
    });
    return new api.BarcodeDetector({formats: FORMATS});
  }

  function startCamera() {
    if (scanning) { return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      $("camera-note").hidden = false; return;
    }
    scanning = true;
    navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}, audio: false})
      .then(function (s) {
        if (!scanning) { s.getTracks().forEach(function (t) { t.stop(); }); return; }
        stream = s;
        var video = $("video");
        video.srcObject = s;
        return video.play().then(detector).then(function (d) { scanLoop(d, video); });
      }).catch(function () { scanning = false; $("camera-note").hidden = false; });
  }

  function stopCamera() {
    scanning = false;
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
  }

  function scanLoop(d, video) {
    if (!scanning) { return; }
    d.detect(video).then(function (codes) {
      if (codes.length && scanning) {
        stopCamera();
        lookup(codes[0].rawValue, true);
      } else {
        setTimeout(function () { scanLoop(d, video); }, 200);
      }
    }, function () { setTimeout(function () { scanLoop(d, video); }, 500); });
  }

  $("code-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    lookup($("code").value, false);
  });

  function lookup(code, scanned) {
    var err = $("screen-scan").querySelector(".error");
    call("POST", "/till/api/lookup", {code: code, scanned: scanned}).then(function (r) {
      if (r.status === 200) {
        err.textContent = ""; $("code").value = "";
        renderMember(r.body.member); show("member");
      } else {
        if (r.status === 401) { loadState(); return; }
        err.textContent = r.status === 404 ? W.not_found : problemText(r.body);
        if (scanned) { setTimeout(function () { if (!$("screen-scan").hidden) { startCamera(); } }, 1500); }
      }
    }, function () { err.textContent = W.offline; if (scanned) { startCamera(); } });
  }

  /* --- the member ------------------------------------------------------------------- */

  function money(minor) {
    var digits = member && member.currency === "JPY" ? 0 : 2;
    return new Intl.NumberFormat(LANG, {style: "currency", currency: (member && member.currency) || "RUB"})
      .format(minor / Math.pow(10, digits));
  }

  function li(list, text, button) {
    var item = document.createElement("li");
    var span = document.createElement("span");
    span.textContent = text;
    item.appendChild(span);
    if (button) { item.appendChild(button); }
    list.appendChild(item);
  }

  function actionButton(label, body) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "small";
    b.textContent = label;
    b.addEventListener("click", function () { send(body); });
    return b;
  }

  var TYPE_WORDS = {earn: "earn", redeem: "redeem_type", refund: "refund_type",
                    reward: "reward_type", coupon: "coupon_type"};

  function renderMember(m) {
    member = m;
    $("member-name").textContent = m.name;
    $("member-number").textContent = m.card_number + (m.closed ? " · " + W.closed : "");
    $("balance-label").textContent = m.balance.label;
    $("balance-value").textContent = m.balance.value;
    $("balance-unit").textContent = m.balance.unit;
    $("member-tier").textContent = m.tier ? W.tier + ": " + m.tier : "";
    var lines = $("member-lines"); lines.textContent = "";
    m.lines.forEach(function (t) { li(lines, t); });
    $("stamps-box").hidden = m.kind !== "stamps";
    $("spend-box").hidden = !(m.kind === "points" || m.kind === "cashback");
    ["rewards", "coupons", "last"].forEach(function (id) { $(id).textContent = ""; });
    m.rewards.forEach(function (r) {
      li($("rewards"), r.name + (r.cost ? " · " + r.cost : ""),
         actionButton(W.redeem, {kind: "reward", reward_id: r.id}));
    });
    if (!m.rewards.length) { li($("rewards"), W.none); }
    m.coupons.forEach(function (c) {
      li($("coupons"), c.name, actionButton(W.use, {kind: "coupon", coupon_id: c.id}));
    });
    if (!m.coupons.length) { li($("coupons"), W.none); }
    m.last.forEach(function (e) {
      var what = (W[TYPE_WORDS[e.type]] || e.type) + " " +
        (e.stamps ? (e.stamps > 0 ? "+" : "") + e.stamps + " ★ " : "") +
        (e.points ? (e.points > 0 ? "+" : "") + e.points : "") +
        (e.amount_minor ? " · " + money(e.amount_minor) : "");
      var button = null;
      if (e.type === "earn" && e.amount_minor) {
        button = actionButton(W.refund, {kind: "refund", entry_id: e.id});
      }
      li($("last"), what, button);
    });
    $("amount").value = ""; $("quote").textContent = ""; $("purchase").disabled = true;
  }

  var quoteTimer = null;
  $("amount").addEventListener("input", function () {
    clearTimeout(quoteTimer);
    var amount = $("amount").value.replace(",", ".");
    $("purchase").disabled = true;
    if (!/^\d+(\.\d{1,2})?$/.test(amount) || Number(amount) <= 0) { $("quote").textContent = ""; return; }
    quoteTimer = setTimeout(function () {
      call("POST", "/till/api/members/" + member.id + "/quote", {amount: amount}).then(function (r) {
        if (r.status !== 200) { $("quote").textContent = problemText(r.body); return; }
        var q = r.body, parts = [];
        if (member.kind === "cashback") { parts.push(W.will_earn + ": " + money(q.points)); }
        else if (member.kind === "points") { parts.push(W.will_earn + ": " + q.points); }
        else if (member.kind === "stamps") { parts.push(W.will_earn + ": " + q.stamps + " ★"); }
        if (q.discount_percent) {
          parts.push(W.discount + ": " + q.discount_percent + "% (−" + money(q.discount_minor) + ")");
        }
        $("quote").textContent = parts.join(" · ");
        $("purchase").disabled = false;
      }, function () { $("quote").textContent = W.offline; });
    }, 250);
  });

  $("purchase").addEventListener("click", function () {
    send({kind: "purchase", amount: $("amount").value.replace(",", ".")});
  });
  Array.prototype.forEach.call(document.querySelectorAll(".stamp"), function (b) {
    b.addEventListener("click", function () { send({kind: "stamps", count: Number(b.dataset.count)}); });
  });
  $("spend-go").addEventListener("click", function () {
    var v = $("spend").value.replace(",", ".");
    if (!v) { return; }
    send(member.kind === "cashback" ? {kind: "spend", amount: v} : {kind: "spend", points: Number(v)});
  });

  /* --- sending an action ------------------------------------------------------------ */

  function send(body) {
    pending = {body: body, key: newKey(), member: member.id};
    attempt();
  }

  function attempt() {
    var p = pending;
    show("result");
    $("result-h").textContent = W.sending;
    $("result-h").className = "status sending";
    $("result-detail").textContent = "";
    $("result-balance").textContent = "";
    $("retry").hidden = true; $("undo").hidden = true;
    call("POST", "/till/api/members/" + p.member + "/actions", p.body, {"Idempotency-Key": p.key})
      .then(function (r) {
        if (r.status === 200 || r.status === 201) {
          pending = null;
          renderMember(r.body.member);
          $("result-h").textContent = W.done;
          $("result-h").className = "status done";
          $("result-balance").textContent = r.body.member.balance.value + " " + r.body.member.balance.unit;
          var res = r.body.result;
          if ((res.type === "earn" || res.type === "redeem") && p.body.kind !== "undo") {
            var undo = $("undo");
            undo.hidden = false;
            undo.onclick = function () { send({kind: "undo", entry_id: res.entry_id}); };
            setTimeout(function () { undo.hidden = true; }, 5 * 60 * 1000);
          }
        } else {
          // The service answered: nothing to retry with this key; say what it said.
          pending = null;
          if (r.status === 401) { loadState(); return; }
          $("result-h").textContent = problemText(r.body);
          $("result-h").className = "status failed";
        }
      }, function () {
        // No answer: the action may or may not have arrived. A retry with the same key is
        // safe either way; nothing is sent without the staff asking.
        $("result-h").textContent = W.not_sent;
        $("result-h").className = "status failed";
        $("retry").hidden = false;
      });
  }

  $("retry").addEventListener("click", function () { if (pending) { attempt(); } });
  Array.prototype.forEach.call(document.querySelectorAll(".back"), function (b) {
    b.addEventListener("click", function () { pending = null; member = null; show("scan"); });
  });

  window.addEventListener("online", function () { net(""); });
  window.addEventListener("offline", function () { net(W.offline); });

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/till/sw.js", {scope: "/till"}).catch(function () {});
  }
  loadState();
}());
