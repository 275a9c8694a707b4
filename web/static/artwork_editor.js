// The artwork editor (staff dashboard): draw the framing boxes and the reference region by
// dragging on the image, with a mouse, a pen or a finger (Pointer Events). The drawn boxes live
// in the form's number inputs as fractions of the image (0..1), so the form posts them as a
// plain form would, and typing a number moves its box too. Local asset, no libraries.
"use strict";

(function () {
  const form = document.querySelector(".artwork-editor");
  if (!form) return;
  const drawing = form.querySelector(".drawing");
  const image = drawing.querySelector("img");
  const readonly = drawing.dataset.readonly === "true";
  const modeSelect = form.querySelector('select[name="reference_mode"]');
  const coordinates = ["x0", "y0", "x1", "y1"];
  // A press shorter than this (as a fraction of the image) is a tap, not a box.
  const smallest = 0.01;

  const inputs = (region) => coordinates.map((c) => form.querySelector(`input[name="${region}-${c}"]`));
  const overlay = (region) => drawing.querySelector(`.box[data-region="${region}"]`);
  const chosenRegion = () => (form.querySelector('input[name="draw"]:checked') || {}).value;
  const round = (value) => Math.round(value * 10000) / 10000;
  const clamp = (value) => Math.min(1, Math.max(0, value));

  function readBox(region) {
    const values = inputs(region).map((input) => input.value.trim());
    if (values.some((v) => v === "")) return null;
    const [x0, y0, x1, y1] = values.map(Number);
    if (![x0, y0, x1, y1].every(Number.isFinite) || x1 <= x0 || y1 <= y0) return null;
    return { x0, y0, x1, y1 };
  }

  function writeBox(region, box) {
    inputs(region).forEach((input, i) => {
      input.value = String(round(box[coordinates[i]]));
    });
  }

  function show(region) {
    const element = overlay(region);
    const box = readBox(region);
    element.hidden = box === null;
    if (box === null) return;
    // Percentages: the boxes follow the image as the page resizes.
    element.style.left = `${box.x0 * 100}%`;
    element.style.top = `${box.y0 * 100}%`;
    element.style.width = `${(box.x1 - box.x0) * 100}%`;
    element.style.height = `${(box.y1 - box.y0) * 100}%`;
  }

  function showAll() {
    for (const element of drawing.querySelectorAll(".box")) show(element.dataset.region);
    const chosen = chosenRegion();
    for (const element of drawing.querySelectorAll(".box")) {
      element.classList.toggle("chosen", element.dataset.region === chosen);
    }
  }

  function pointAt(event) {
    const rect = image.getBoundingClientRect();
    return { x: clamp((event.clientX - rect.left) / rect.width), y: clamp((event.clientY - rect.top) / rect.height) };
  }

  let drag = null; // {region, start, before, pointerId}

  function boxBetween(a, b) {
    return { x0: Math.min(a.x, b.x), y0: Math.min(a.y, b.y), x1: Math.max(a.x, b.x), y1: Math.max(a.y, b.y) };
  }

  drawing.addEventListener("pointerdown", (event) => {
    const region = chosenRegion();
    if (readonly || !region || event.button !== 0 || drag) return;
    event.preventDefault();
    drawing.setPointerCapture(event.pointerId);
    drag = { region, start: pointAt(event), before: readBox(region), pointerId: event.pointerId };
  });

  drawing.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const box = boxBetween(drag.start, pointAt(event));
    if (box.x1 - box.x0 < smallest || box.y1 - box.y0 < smallest) return;
    writeBox(drag.region, box);
    show(drag.region);
  });

  function finish(event, keep) {
    if (!drag || event.pointerId !== drag.pointerId) return;
    const box = boxBetween(drag.start, pointAt(event));
    const region = drag.region;
    if (keep && box.x1 - box.x0 >= smallest && box.y1 - box.y0 >= smallest) {
      writeBox(region, box);
      if (region === "reference" && modeSelect) modeSelect.value = "region"; // a drawn region is meant to be used
    } else if (drag.before) {
      writeBox(region, drag.before); // a tap or a cancelled drag leaves the box as it was
    } else {
      for (const input of inputs(region)) input.value = "";
    }
    drag = null;
    showAll();
  }

  drawing.addEventListener("pointerup", (event) => finish(event, true));
  drawing.addEventListener("pointercancel", (event) => finish(event, false));
  form.addEventListener("input", showAll);
  form.addEventListener("change", showAll);
  image.addEventListener("load", showAll);
  showAll();
})();
