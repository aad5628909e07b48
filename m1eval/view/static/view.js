// m1eval view: sorting, filtering, quick filters, texts loaded on demand, copy buttons.
// No inline handlers anywhere: everything is attached here. Model text only ever enters the
// page as text nodes (textContent), never as HTML.
"use strict";

function sortValue(cell, numeric) {
  const raw = cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent;
  if (!numeric) return raw.toLowerCase();
  const x = parseFloat(raw);
  return Number.isNaN(x) ? -Infinity : x;
}

function makeSortable(table) {
  const heads = table.tHead ? Array.from(table.tHead.rows[0].cells) : [];
  heads.forEach((th, col) => {
    if (!th.dataset.sort) return;
    th.tabIndex = 0;
    th.classList.add("sort");
    const sort = () => {
      const numeric = th.dataset.sort === "num";
      const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      heads.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = sortValue(a.cells[col], numeric), y = sortValue(b.cells[col], numeric);
        return x < y ? -dir : x > y ? dir : 0;
      });
      rows.forEach((r) => body.appendChild(r));
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
  });
}

function applyFilters(table) {
  const input = document.getElementById("filter");
  const query = input ? input.value.trim().toLowerCase() : "";
  const flags = Array.from(document.querySelectorAll("button.quick[aria-pressed=true]")).map((b) => b.dataset.flag);
  let shown = 0;
  const rows = Array.from(table.tBodies[0].rows);
  rows.forEach((row) => {
    const have = (row.dataset.flags || "").split(" ");
    const ok = (!query || row.textContent.toLowerCase().includes(query)) && flags.every((f) => have.includes(f));
    row.hidden = !ok;
    if (ok) shown += 1;
  });
  const counter = document.getElementById("shown");
  if (counter) counter.textContent = shown + " of " + rows.length + " shown";
}

function makeFilterable(table) {
  const input = document.getElementById("filter");
  if (input) input.addEventListener("input", () => applyFilters(table));
  document.querySelectorAll("button.quick").forEach((button) => {
    button.addEventListener("click", () => {
      button.setAttribute("aria-pressed", button.getAttribute("aria-pressed") === "true" ? "false" : "true");
      applyFilters(table);
    });
  });
}

function fillPart(pre, part) {
  pre.textContent = "";
  pre.appendChild(document.createTextNode(part.before));
  if (part.mark) {
    const mark = document.createElement("mark");
    mark.textContent = part.mark;
    pre.appendChild(mark);
  }
  pre.appendChild(document.createTextNode(part.after));
}

function loadOnOpen(details) {
  details.addEventListener("toggle", () => {
    if (!details.open || details.dataset.loaded) return;
    details.dataset.loaded = "loading";
    const pre = details.querySelector("pre.full");
    pre.textContent = "loading…";
    fetch(details.dataset.src, { credentials: "same-origin" })
      .then((r) => r.ok ? r.json() : r.text().then((t) => Promise.reject(new Error(r.status + " " + t.slice(0, 300)))))
      .then((data) => {
        if (data.error) throw new Error(data.error);
        fillPart(pre, data.parts[Number(details.dataset.part)]);
        details.dataset.loaded = "yes";
      })
      .catch((err) => {
        pre.textContent = "could not load this text: " + err.message;
        pre.classList.add("error");
        details.dataset.loaded = "";
      });
  });
}

function makeCopyable(button) {
  button.addEventListener("click", () => {
    const text = button.previousElementSibling.textContent;
    const done = () => { button.textContent = "copied"; setTimeout(() => { button.textContent = "copy"; }, 1500); };
    const select = () => {
      const range = document.createRange();
      range.selectNodeContents(button.previousElementSibling);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      button.textContent = "selected: press Ctrl+C";
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, select);
    else select();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  document.querySelectorAll("table.filterable").forEach(makeFilterable);
  document.querySelectorAll("details[data-src]").forEach(loadOnOpen);
  document.querySelectorAll("button.copy").forEach(makeCopyable);
});
