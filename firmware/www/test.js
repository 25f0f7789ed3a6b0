// The test page: one tab per protocol, plain JavaScript, no build step.
"use strict";

function wsUrl(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

function open(name, path, protocol, onmsg) {
  const state = document.getElementById(name + "-state");
  let ws;
  function connect() {
    ws = protocol ? new WebSocket(wsUrl(path), protocol) : new WebSocket(wsUrl(path));
    ws.onopen = () => { state.textContent = "open"; state.className = "state open"; };
    ws.onclose = () => {
      state.textContent = "closed"; state.className = "state";
      setTimeout(connect, 2000);
    };
    ws.onmessage = (e) => onmsg(e.data);
  }
  connect();
  return { send: (m) => ws && ws.readyState === 1 && ws.send(m) };
}

function addLine(list, text) {
  const li = document.createElement("li");
  li.textContent = text;
  list.prepend(li);
  while (list.children.length > 20) list.lastChild.remove();
}

document.querySelectorAll("nav button").forEach((b) => {
  b.onclick = () => {
    document.querySelectorAll("nav button, section").forEach((e) => e.classList.remove("on"));
    b.classList.add("on");
    document.getElementById(b.dataset.tab).classList.add("on");
  };
});

const dumbN = document.getElementById("dumb-n");
const dumb = open("dumb", "/", "dumb-increment-protocol", (m) => { dumbN.textContent = m; });
document.getElementById("dumb-reset").onclick = () => dumb.send("reset\n");

const mirrorLog = document.getElementById("mirror-log");
const mirror = open("mirror", "/", "lws-mirror-protocol", (m) => addLine(mirrorLog, m));
document.getElementById("mirror-form").onsubmit = (e) => {
  e.preventDefault();
  const i = document.getElementById("mirror-in");
  if (i.value) mirror.send(i.value);
  i.value = "";
};

const echoLog = document.getElementById("echo-log");
const echo = open("echo", "/echo", null, (m) => addLine(echoLog, "echo: " + m));
document.getElementById("echo-form").onsubmit = (e) => {
  e.preventDefault();
  const i = document.getElementById("echo-in");
  echo.send(i.value);
  i.value = "";
};

open("status", "/", "lws-status", (m) => {
  const s = JSON.parse(m);
  document.getElementById("heap").textContent =
    s.heap.alloc + " bytes in use, " + s.heap.free + " free";
  const body = document.getElementById("conns");
  body.textContent = "";
  for (const c of s.connections) {
    const tr = document.createElement("tr");
    for (const v of [c.peer, c.role, c.protocol || ""]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
});
