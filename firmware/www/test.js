// The test page: one tab per protocol, plain JavaScript, no build step.
// A tab stays hidden until its protocol has answered (its WebSocket
// opened, or /t/ served a page); one that never answers, because the
// server does not have it, is given up after TRIES attempts. The first
// tab shown is selected, until the user picks one.
"use strict";

const TRIES = 3;
const nav = document.querySelector("nav");
let pending = 0;     // protocols not answered yet, nor given up
let picked = false;  // the user chose a tab

function wsUrl(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

function select(b) {
  document.querySelectorAll("nav button, section").forEach((e) => e.classList.remove("on"));
  b.classList.add("on");
  document.getElementById(b.dataset.tab).classList.add("on");
}

function settled(tab) {
  pending--;
  if (tab) {
    nav.querySelector('[data-tab="' + tab + '"]').hidden = false;
    if (!picked) select(nav.querySelector("button:not([hidden])"));
  }
  nav.classList.toggle("busy", pending > 0);
  document.getElementById("none").hidden =
    pending > 0 || !!nav.querySelector("button:not([hidden])");
}

nav.querySelectorAll("button").forEach((b) => {
  b.onclick = () => { picked = true; select(b); };
});

// A WebSocket of one protocol. Once it has opened, it reconnects after
// every close (waiting longer each time, up to 30 s); before that, a
// failure is retried TRIES times at most, then the tab stays hidden.
function open(name, path, protocol, onmsg) {
  const state = document.getElementById(name + "-state");
  let ws, opened = false, tries = 0, wait = 1000;
  pending++;
  function connect() {
    ws = new WebSocket(wsUrl(path), protocol);
    ws.onopen = () => {
      state.textContent = "open"; state.className = "state open";
      wait = 1000;
      if (!opened) { opened = true; settled(name); }
    };
    ws.onclose = () => {
      state.textContent = "closed"; state.className = "state";
      if (opened || ++tries < TRIES) {
        setTimeout(connect, wait);
        wait = Math.min(wait * 2, 30000);
      } else {
        settled(null);
      }
    };
    ws.onmessage = (e) => onmsg(e.data);
  }
  connect();
  return { send: (m) => ws.readyState === 1 && ws.send(m) };
}

function addLine(list, text) {
  const li = document.createElement("li");
  li.textContent = text;
  list.prepend(li);
  while (list.children.length > 20) list.lastChild.remove();
}

function form(name, send) {
  document.getElementById(name + "-form").onsubmit = (e) => {
    e.preventDefault();
    const i = document.getElementById(name + "-in");
    if (i.value) send(i.value);
    i.value = "";
  };
}

const dumbN = document.getElementById("dumb-n");
const dumb = open("dumb", "/", "dumb-increment-protocol", (m) => { dumbN.textContent = m; });
document.getElementById("dumb-reset").onclick = () => dumb.send("reset\n");

const mirrorLog = document.getElementById("mirror-log");
const mirror = open("mirror", "/", "lws-mirror-protocol", (m) => addLine(mirrorLog, m));
form("mirror", mirror.send);

// named, so that a server without echo refuses it (400) rather than
// giving /echo to its default protocol
const echoLog = document.getElementById("echo-log");
const echo = open("echo", "/echo", "echo", (m) => addLine(echoLog, "echo: " + m));
form("echo", echo.send);

open("status", "/", "lws-status", (m) => {
  const s = JSON.parse(m);
  document.getElementById("heap").textContent =
    s.heap.alloc + " bytes in use, " + s.heap.free + " free";
  const t = s.stats;
  if (t)
    document.getElementById("stats").textContent =
      t.accepted + " accepted, " + t.refused + " refused, " + t.bytes_in +
      " B in, " + t.bytes_out + " B out, HTTP " +
      Object.entries(t.http).map(([k, n]) => n + " " + k).join(" ") +
      ", WebSocket " + t.ws_messages.rx + " in / " + t.ws_messages.tx +
      " out, writeable after " + t.writeable_ms.mean.toFixed(1) + " ms (max " +
      t.writeable_ms.max + ")";
  const body = document.getElementById("conns");
  body.textContent = "";
  // a board's lws-status gives counts, no peers: a row for each
  const rows = s.connections || Object.entries(s.roles || {}).map(
    ([r, n]) => ({peer: n + " open", role: r})).concat(Object.entries(
    s.protocols || {}).map(([p, n]) => ({peer: n + " open", role: "",
                                         protocol: p})));
  for (const c of rows) {
    const tr = document.createElement("tr");
    for (const v of [c.peer, c.role, c.protocol || ""]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
});

// the http tab: its links are the lws-http-test protocol's pages
pending++;
fetch("/t/heap", { cache: "no-store" })
  .then((r) => settled(r.ok ? "http" : null), () => settled(null));
