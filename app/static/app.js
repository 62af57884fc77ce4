// The digit page: a drawing pad and an image picker that ask POST /predict for the digit (or, in
// number mode, POST /predict/number for every digit of a number), and a panel that shows the
// answer, the probability of every digit, the 28 x 28 image the model saw (or the number read,
// each digit's confidence and its box drawn over the pad) and the model's stored test scores
// from GET /metrics. Plain JavaScript, no dependencies.

const PREDICT_URL = "/predict?include_input=true";
const NUMBER_URL = "/predict/number";
const METRICS_URL = "/metrics";
const DIGITS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

// Ink and paper of the pad. The service finds the background itself, so the polarity is free.
const PAPER_COLOUR = "#ffffff";
const INK_COLOUR = "#111111";
// Stroke width as a share of the pad's side: a marker, about as thick relative to the digit as
// the pen strokes in MNIST.
const STROKE_WIDTH_RATIO = 0.07;
// Below this confidence the page says that the model is unsure.
const UNSURE_BELOW = 0.6;

// The pad's pixels in each mode: a square for one digit, a wide strip for a number.
const PAD_SIZES = { digit: [512, 512], number: [1024, 384] };
const MODE_WORDS = {
  digit: { heading: "Your digit", label: "Drawing area for one digit", idle: "Draw a digit to see what the model reads." },
  number: { heading: "Your number", label: "Drawing area for a number of several digits", idle: "Write a number to see what the model reads." },
};
const BOX_COLOUR = "#2f5bd3";

// What the page says instead of a digit when the service does not believe the image shows one
// (is_digit false), by the reason it gives.
const VERDICTS = {
  not_a_digit: "This does not look like a digit",
  several_digits: "This looks like several digits",
};

// Friendly words for the service's error codes; the service's own message is shown beneath.
const ERROR_WORDS = {
  no_digit_found: "No digit found. Draw a larger, darker digit, or choose an image with a clear digit in it.",
  invalid_image: "That file could not be read as an image. It may be damaged or in an unusual format.",
  unsupported_media_type: "That file is not an image. Choose a PNG, JPEG, GIF, BMP, WebP or TIFF picture.",
  empty_upload: "That file is empty.",
  payload_too_large: "That file is too large for the service.",
  image_too_large: "That image has too many pixels for the service.",
  missing_file: "No image reached the service.",
  model_unavailable: "The model is not available right now. Try again in a moment.",
};

const elements = {
  pad: document.getElementById("pad"),
  boxes: document.getElementById("boxes"),
  padHeading: document.getElementById("pad-heading"),
  modeInputs: document.querySelectorAll('input[name="mode"]'),
  numberDigits: document.getElementById("number-digits"),
  dropzone: document.getElementById("dropzone"),
  padCaption: document.getElementById("pad-caption"),
  clearButton: document.getElementById("clear"),
  fileInput: document.getElementById("file"),
  result: document.getElementById("result"),
  chart: document.getElementById("chart"),
  digit: document.getElementById("digit"),
  confidence: document.getElementById("confidence"),
  seenFigure: document.getElementById("seen-figure"),
  seen: document.getElementById("seen"),
  error: document.getElementById("error"),
  bars: document.getElementById("bars"),
  scoreAccuracy: document.getElementById("score-accuracy"),
  scorePrecision: document.getElementById("score-precision"),
  scoreRecall: document.getElementById("score-recall"),
  scoresNote: document.getElementById("scores-note"),
};

const context = elements.pad.getContext("2d");
const boxesContext = elements.boxes.getContext("2d");

// What the page reads ("digit" or "number"), and how the image sent maps onto the pad: pad
// pixel = offset + scale * image pixel (the identity for a drawing).
const view = { mode: "digit", transform: { scale: 1, x: 0, y: 0 } };
const padCaptionDefault = elements.padCaption.textContent;

// Drawing state: the pointer that draws (others are ignored), the pad as it was before the
// current stroke and the stroke's points so far, whether the pad holds any ink, and whether it
// shows an uploaded picture (then the next stroke starts on a clean pad).
const drawing = { pointerId: null, before: null, points: [], hasInk: false, showsUpload: false };

// Every request gets a number; only the answer to the newest one is shown, and older requests
// still in flight are aborted.
const requests = { latest: 0, controller: null };

// ---------------------------------------------------------------------------------------------
// Formatting.

function formatPercent(fraction, decimals = 1) {
  return `${(fraction * 100).toFixed(decimals)} %`;
}

// ---------------------------------------------------------------------------------------------
// The probability chart: ten rows built once, updated in place.

const barRows = DIGITS.map((digit) => {
  const row = document.createElement("li");
  row.className = "bar";
  row.dataset.digit = String(digit);

  const label = document.createElement("span");
  label.className = "bar-digit";
  label.innerHTML = `<span class="visually-hidden">Digit </span>${digit}<span class="visually-hidden">: </span>`;

  const track = document.createElement("span");
  track.className = "bar-track";
  track.setAttribute("aria-hidden", "true");
  const fill = document.createElement("span");
  fill.className = "bar-fill";
  track.append(fill);

  const value = document.createElement("span");
  value.className = "bar-value";
  value.textContent = "–";

  row.append(label, track, value);
  elements.bars.append(row);
  return { row, fill, value };
});

function showBars(probabilities) {
  const top = probabilities.indexOf(Math.max(...probabilities));
  barRows.forEach(({ row, fill, value }, digit) => {
    const probability = probabilities[digit];
    fill.style.width = `${(probability * 100).toFixed(2)}%`;
    value.textContent = formatPercent(probability);
    row.classList.toggle("is-top", digit === top);
  });
}

function resetBars() {
  barRows.forEach(({ row, fill, value }) => {
    fill.style.width = "0";
    value.textContent = "–";
    row.classList.remove("is-top");
  });
}

// ---------------------------------------------------------------------------------------------
// The result panel.

function setState(state) {
  for (const section of [elements.result, elements.chart]) {
    section.dataset.state = state;
    section.setAttribute("aria-busy", state === "pending" ? "true" : "false");
  }
}

function showIdle(message) {
  setState("idle");
  elements.digit.textContent = "?";
  elements.confidence.textContent = message;
  elements.error.hidden = true;
  elements.error.replaceChildren();
  elements.seenFigure.hidden = true;
  elements.seen.removeAttribute("src");
  elements.numberDigits.hidden = true;
  elements.numberDigits.replaceChildren();
  clearBoxes();
  resetBars();
}

function showPending() {
  setState("pending");
  elements.error.hidden = true;
}

// An unsure answer names the second most probable digit only when it holds this much.
const SECOND_GUESS_AT_LEAST = 0.1;

// The two most probable digits, most probable first.
function topTwo(probabilities) {
  const order = DIGITS.slice().sort((first, second) => probabilities[second] - probabilities[first]);
  return [order[0], order[1]];
}

// The words for a prediction the service does not take for one digit.
function verdictText(prediction) {
  if (prediction.reason === "low_confidence") {
    const [first, second] = topTwo(prediction.probabilities);
    // A second digit the model hardly believes in is not worth naming.
    if (prediction.probabilities[second] >= SECOND_GUESS_AT_LEAST) {
      return `Not sure: is it a ${first} or a ${second}?`;
    }
    return `Not sure: is it a ${first}?`;
  }
  return VERDICTS[prediction.reason] || VERDICTS.not_a_digit;
}

function showVerdict(prediction) {
  elements.digit.textContent = "?";
  const verdict = document.createElement("span");
  verdict.className = "verdict";
  verdict.textContent = verdictText(prediction);
  const parts = [verdict];
  if (prediction.reason === "several_digits") {
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = "Choose “A number” below the pad to read every digit.";
    parts.push(hint);
  }
  elements.confidence.replaceChildren(...parts);
}

function showPrediction(prediction) {
  if (prediction.is_digit === false) {
    showVerdict(prediction);
  } else {
    showDigit(prediction);
  }
  finishPrediction(prediction);
}

function showDigit(prediction) {
  elements.digit.textContent = String(prediction.digit);

  const spoken = document.createElement("span");
  spoken.className = "visually-hidden";
  spoken.textContent = `The model reads ${prediction.digit}, `;
  const figure = document.createElement("strong");
  figure.textContent = formatPercent(prediction.confidence);
  const parts = [spoken, figure, document.createTextNode(" confident")];
  if (prediction.confidence < UNSURE_BELOW) {
    const stop = document.createElement("span");
    stop.className = "visually-hidden";
    stop.textContent = ". ";
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = "Unsure: try a larger, clearer digit.";
    parts.push(stop, hint);
  }
  elements.confidence.replaceChildren(...parts);
}

function finishPrediction(prediction) {
  showBars(prediction.probabilities);

  if (typeof prediction.input_image === "string" && prediction.input_image !== "") {
    elements.seen.src = `data:image/png;base64,${prediction.input_image}`;
    elements.seenFigure.hidden = false;
  } else {
    elements.seenFigure.hidden = true;
  }
  elements.error.hidden = true;
  setState("done");
}

// A number read by POST /predict/number: the text, how sure, each digit and its box on the pad.
function showNumber(reading) {
  elements.digit.textContent = reading.text;
  const spoken = document.createElement("span");
  spoken.className = "visually-hidden";
  spoken.textContent = `The model reads ${reading.text.replace(/\n/g, ", then ")}, `;
  const figure = document.createElement("strong");
  figure.textContent = formatPercent(reading.confidence);
  elements.confidence.replaceChildren(spoken, figure, document.createTextNode(" confident (every digit right)"));

  const items = [];
  for (const line of reading.lines) {
    for (const digit of line.digits) {
      const item = document.createElement("li");
      item.textContent = `${digit.digit}: ${formatPercent(digit.confidence)}`;
      item.classList.toggle("is-unsure", digit.is_digit === false || digit.confidence < UNSURE_BELOW);
      items.push(item);
    }
  }
  elements.numberDigits.replaceChildren(...items);
  elements.numberDigits.hidden = false;
  drawBoxes(reading);
  elements.error.hidden = true;
  setState("done");
}

function clearBoxes() {
  boxesContext.clearRect(0, 0, elements.boxes.width, elements.boxes.height);
}

// Draws each digit's box over the pad, labelled with the digit and its confidence.
function drawBoxes(reading) {
  clearBoxes();
  const { scale, x: offsetX, y: offsetY } = view.transform;
  const fontSize = Math.max(14, Math.round(elements.boxes.height * 0.05));
  boxesContext.lineWidth = Math.max(2, Math.round(elements.boxes.height / 160));
  boxesContext.strokeStyle = BOX_COLOUR;
  boxesContext.fillStyle = BOX_COLOUR;
  boxesContext.font = `600 ${fontSize}px system-ui, sans-serif`;
  boxesContext.textBaseline = "bottom";
  for (const line of reading.lines) {
    for (const digit of line.digits) {
      const left = offsetX + digit.box.x * scale;
      const top = offsetY + digit.box.y * scale;
      boxesContext.strokeRect(left, top, digit.box.width * scale, digit.box.height * scale);
      const label = `${digit.digit} · ${Math.round(digit.confidence * 100)} %`;
      boxesContext.fillText(label, left, Math.max(fontSize, top - 2));
    }
  }
}

function showError(headline, detail) {
  elements.digit.textContent = "?";
  elements.confidence.textContent = "No answer for this image.";
  const main = document.createElement("p");
  main.className = "error-headline";
  main.textContent = headline;
  const parts = [main];
  if (detail && detail !== headline) {
    const more = document.createElement("p");
    more.className = "error-detail";
    more.textContent = `The service said: ${detail}`;
    parts.push(more);
  }
  elements.error.replaceChildren(...parts);
  elements.error.hidden = false;
  elements.seenFigure.hidden = true;
  elements.numberDigits.hidden = true;
  clearBoxes();
  resetBars();
  setState("error");
}

// ---------------------------------------------------------------------------------------------
// Talking to the service.

function isPrediction(body) {
  return (
    body !== null &&
    typeof body === "object" &&
    Number.isInteger(body.digit) &&
    typeof body.confidence === "number" &&
    Array.isArray(body.probabilities) &&
    body.probabilities.length === DIGITS.length &&
    body.probabilities.every((value) => typeof value === "number")
  );
}

function isNumberReading(body) {
  return (
    body !== null &&
    typeof body === "object" &&
    typeof body.text === "string" &&
    typeof body.confidence === "number" &&
    Array.isArray(body.lines) &&
    body.lines.every((line) => Array.isArray(line.digits))
  );
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

// Sends one image (a Blob or File) and shows the answer, unless a newer request was made since.
async function predict(image, fileName) {
  requests.latest += 1;
  const requestNumber = requests.latest;
  if (requests.controller) {
    requests.controller.abort();
  }
  const controller = new AbortController();
  requests.controller = controller;
  const isCurrent = () => requestNumber === requests.latest;

  showPending();
  const form = new FormData();
  form.append("file", image, fileName);
  const readsNumber = view.mode === "number";

  let response;
  try {
    response = await fetch(readsNumber ? NUMBER_URL : PREDICT_URL, { method: "POST", body: form, signal: controller.signal });
  } catch (error) {
    if (isCurrent()) {
      showError("Could not reach the service. Check that it is running, then try again.", String(error.message || ""));
    }
    return;
  }
  const body = await readJson(response);
  if (!isCurrent()) {
    return;
  }
  requests.controller = null;

  if (response.ok && readsNumber && isNumberReading(body)) {
    showNumber(body);
  } else if (response.ok && !readsNumber && isPrediction(body)) {
    showPrediction(body);
  } else if (response.ok) {
    showError("The service sent an answer this page does not understand.", "");
  } else {
    const error = body && typeof body === "object" ? body.error : null;
    const code = error && typeof error.code === "string" ? error.code : "";
    const message = error && typeof error.message === "string" ? error.message : "";
    const headline = ERROR_WORDS[code] || message || `The service answered with HTTP status ${response.status}.`;
    showError(headline, message);
  }
}

// Forgets any answer still on its way, so that it cannot overwrite what the page shows now.
function cancelPending() {
  requests.latest += 1;
  if (requests.controller) {
    requests.controller.abort();
    requests.controller = null;
  }
}

// ---------------------------------------------------------------------------------------------
// The drawing pad.

function paintPaper() {
  context.save();
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.fillStyle = PAPER_COLOUR;
  context.fillRect(0, 0, elements.pad.width, elements.pad.height);
  context.restore();
}

function setStrokeStyle() {
  context.strokeStyle = INK_COLOUR;
  context.fillStyle = INK_COLOUR;
  context.lineWidth = Math.min(elements.pad.width, elements.pad.height) * STROKE_WIDTH_RATIO;
  context.lineCap = "round";
  context.lineJoin = "round";
}

function clearPad() {
  paintPaper();
  clearBoxes();
  view.transform = { scale: 1, x: 0, y: 0 };
  drawing.hasInk = false;
  drawing.showsUpload = false;
  elements.padCaption.textContent = padCaptionDefault;
}

// Maps a pointer event to the pad's own pixel coordinates, whatever size the pad is shown at.
function padPoint(event) {
  const box = elements.pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * elements.pad.width) / box.width,
    y: ((event.clientY - box.top) * elements.pad.height) / box.height,
  };
}

// Draws the whole current stroke again over the pad as it was before the stroke began: one path
// has no seams where short segments would overlap, and curves through the midpoints of the
// pointer samples smooth the corners between them.
function drawStroke() {
  context.putImageData(drawing.before, 0, 0);
  setStrokeStyle();
  const points = drawing.points;
  context.beginPath();
  if (points.length === 1) {
    context.arc(points[0].x, points[0].y, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
    return;
  }
  context.moveTo(points[0].x, points[0].y);
  for (let index = 1; index < points.length - 1; index += 1) {
    const middle = {
      x: (points[index].x + points[index + 1].x) / 2,
      y: (points[index].y + points[index + 1].y) / 2,
    };
    context.quadraticCurveTo(points[index].x, points[index].y, middle.x, middle.y);
  }
  const last = points[points.length - 1];
  context.lineTo(last.x, last.y);
  context.stroke();
}

function onPointerDown(event) {
  if (drawing.pointerId !== null || (event.pointerType === "mouse" && event.button !== 0)) {
    return;
  }
  event.preventDefault();
  if (drawing.showsUpload) {
    clearPad();
  }
  drawing.pointerId = event.pointerId;
  clearBoxes();
  elements.pad.setPointerCapture(event.pointerId);
  drawing.before = context.getImageData(0, 0, elements.pad.width, elements.pad.height);
  drawing.points = [padPoint(event)];
  drawing.hasInk = true;
  drawStroke();
}

function onPointerMove(event) {
  if (event.pointerId !== drawing.pointerId) {
    return;
  }
  event.preventDefault();
  // Coalesced events carry the points the browser merged between frames: smoother strokes.
  const samples = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
  for (const sample of samples.length > 0 ? samples : [event]) {
    drawing.points.push(padPoint(sample));
  }
  drawStroke();
}

function onPointerEnd(event) {
  if (event.pointerId !== drawing.pointerId) {
    return;
  }
  drawing.pointerId = null;
  drawing.before = null;
  drawing.points = [];
  if (elements.pad.hasPointerCapture(event.pointerId)) {
    elements.pad.releasePointerCapture(event.pointerId);
  }
  if (drawing.hasInk) {
    elements.pad.toBlob((blob) => {
      if (blob) {
        predict(blob, "drawing.png");
      } else {
        showError("The drawing could not be turned into an image by this browser.", "");
      }
    }, "image/png");
  }
}

// ---------------------------------------------------------------------------------------------
// Uploaded images: shown on the pad (when the browser can decode them) and sent as they are.

async function showUploadOnPad(file) {
  paintPaper();
  drawing.hasInk = false;
  drawing.showsUpload = true;
  elements.padCaption.textContent = `Showing “${file.name || "your image"}”. Draw on the pad to start again.`;
  try {
    const bitmap = await createImageBitmap(file);
    const { width: padWidth, height: padHeight } = elements.pad;
    const scale = Math.min(padWidth / bitmap.width, padHeight / bitmap.height);
    const width = bitmap.width * scale;
    const height = bitmap.height * scale;
    view.transform = { scale, x: (padWidth - width) / 2, y: (padHeight - height) / 2 };
    // Small images (an MNIST digit, say) are shown with crisp pixels rather than blurred.
    context.imageSmoothingEnabled = scale < 4;
    context.drawImage(bitmap, view.transform.x, view.transform.y, width, height);
    bitmap.close();
    context.imageSmoothingEnabled = true;
  } catch {
    // The browser cannot show this format (TIFF, say); the service may still read it.
  }
}

function handleFile(file) {
  if (!file) {
    return;
  }
  cancelPending();
  showUploadOnPad(file);
  predict(file, file.name || "upload");
}

function onFileChosen() {
  const [file] = elements.fileInput.files;
  handleFile(file);
  // Reset, so that choosing the same file again also triggers a prediction.
  elements.fileInput.value = "";
}

// Dropping anywhere on the page reads the image; the browser must not open the file instead.
let dragDepth = 0;

function carriesFiles(event) {
  return Array.from(event.dataTransfer ? event.dataTransfer.types : []).includes("Files");
}

function onDragEnter(event) {
  if (!carriesFiles(event)) {
    return;
  }
  event.preventDefault();
  dragDepth += 1;
  elements.dropzone.classList.add("is-dragover");
}

function onDragOver(event) {
  if (!carriesFiles(event)) {
    return;
  }
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
}

function onDragLeave(event) {
  if (!carriesFiles(event)) {
    return;
  }
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) {
    elements.dropzone.classList.remove("is-dragover");
  }
}

function onDrop(event) {
  if (!event.dataTransfer) {
    return;
  }
  event.preventDefault();
  dragDepth = 0;
  elements.dropzone.classList.remove("is-dragover");
  const [file] = event.dataTransfer.files;
  if (file) {
    handleFile(file);
  } else {
    showError("Drop an image file (for example a PNG or a photo) to read it.", "");
  }
}

// ---------------------------------------------------------------------------------------------
// One digit or a number: the pad's shape, the words and the endpoint change with the mode.

function setMode(mode) {
  if (!(mode in PAD_SIZES) || mode === view.mode) {
    return;
  }
  cancelPending();
  view.mode = mode;
  document.body.dataset.mode = mode;
  const [width, height] = PAD_SIZES[mode];
  for (const canvas of [elements.pad, elements.boxes]) {
    canvas.width = width;
    canvas.height = height;
  }
  elements.padHeading.textContent = MODE_WORDS[mode].heading;
  elements.pad.setAttribute("aria-label", MODE_WORDS[mode].label);
  clearPad();
  showIdle(MODE_WORDS[mode].idle);
}

// ---------------------------------------------------------------------------------------------
// The model's stored evaluation scores.

async function loadScores() {
  const unavailable = (why) => {
    for (const cell of [elements.scoreAccuracy, elements.scorePrecision, elements.scoreRecall]) {
      cell.textContent = "–";
    }
    elements.scoresNote.textContent = `The model's scores are not available (${why}).`;
  };
  let response;
  try {
    response = await fetch(METRICS_URL, { headers: { Accept: "application/json" } });
  } catch {
    unavailable("the service could not be reached");
    return;
  }
  const body = await readJson(response);
  const test = body && typeof body === "object" ? body.test : null;
  if (!response.ok || !test || typeof test.accuracy !== "number") {
    unavailable(`HTTP status ${response.status}`);
    return;
  }
  elements.scoreAccuracy.textContent = formatPercent(test.accuracy, 2);
  elements.scorePrecision.textContent =
    typeof test.precision_macro === "number" ? formatPercent(test.precision_macro, 2) : "–";
  elements.scoreRecall.textContent =
    typeof test.recall_macro === "number" ? formatPercent(test.recall_macro, 2) : "–";
  const size = Number.isInteger(test.size) ? test.size.toLocaleString("en") : "the";
  elements.scoresNote.textContent = `Measured on ${size} MNIST test digits the model never saw in training. Precision and recall are averaged over the ten digits.`;
}

// ---------------------------------------------------------------------------------------------
// Wiring.

elements.pad.addEventListener("pointerdown", onPointerDown);
elements.pad.addEventListener("pointermove", onPointerMove);
elements.pad.addEventListener("pointerup", onPointerEnd);
elements.pad.addEventListener("pointercancel", onPointerEnd);
elements.pad.addEventListener("lostpointercapture", onPointerEnd);
// A long press on touch screens would otherwise open a context menu over the pad.
elements.pad.addEventListener("contextmenu", (event) => event.preventDefault());

elements.clearButton.addEventListener("click", () => {
  cancelPending();
  clearPad();
  showIdle(MODE_WORDS[view.mode].idle);
});
for (const input of elements.modeInputs) {
  input.addEventListener("change", () => {
    if (input.checked) {
      setMode(input.value);
    }
  });
}
elements.fileInput.addEventListener("change", onFileChosen);

window.addEventListener("dragenter", onDragEnter);
window.addEventListener("dragover", onDragOver);
window.addEventListener("dragleave", onDragLeave);
window.addEventListener("drop", onDrop);

document.body.dataset.mode = view.mode;
clearPad();
showIdle(MODE_WORDS[view.mode].idle);
loadScores();
