// images.js: sending an image. A file from the picker, the clipboard or a
// drop is checked (type, size), previewed above the message box, and sent
// on Enter as base64 in an `image` message, with what was typed as its
// caption. It goes through the same outbox as text (view.js's enqueue).

import { S } from './state.js';
import { ui } from './dom.js';
import { IMAGE_TYPES, byteLength, fmtSize, newCid } from './util.js';
import { systemLine, enqueue, clearPreview, clearInput } from './view.js';
import { takeReply } from './composer.js';

function startPreview(file) {
  const t = S.active;
  if (!file) return;
  if (!t || t.kind !== 'room') {
    if (t) systemLine(t, 'Images can be sent in rooms only.', 'error');
    return;
  }
  if (file.type && !IMAGE_TYPES.includes(file.type)) {
    systemLine(t, 'Only PNG, JPEG, GIF or WebP images can be sent.', 'error');
    return;
  }
  if (file.size > S.limits.max_image) {
    systemLine(t, 'That image is ' + fmtSize(file.size) + '; at most ' + fmtSize(S.limits.max_image) + ' can be sent.', 'error');
    return;
  }
  if (!file.size) {
    systemLine(t, 'That file is empty.', 'error');
    return;
  }
  clearPreview();
  const url = URL.createObjectURL(file);
  S.preview = { file, url, room: t };
  ui.previewImg.src = url;
  ui.previewText.textContent = (file.name || 'pasted image') + ' (' + fmtSize(file.size) + ')';
  ui.preview.hidden = false;
  ui.input.placeholder = 'Caption (optional), then Enter';
  ui.input.focus();
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => {
      const s = String(fr.result);
      const i = s.indexOf(',');
      resolve(i >= 0 ? s.slice(i + 1) : '');
    };
    fr.onerror = () => reject(fr.error);
    fr.readAsDataURL(file);
  });
}

// Enter with an image previewed (composer.js).
export async function sendPreview() {
  const p = S.preview;
  const t = S.active;
  if (!p || !t || t.kind !== 'room') return;
  const caption = ui.input.value.replace(/\s+$/, '').replace(/\s*\r?\n\s*/g, ' ');
  if (byteLength(caption) > S.limits.max_message) {
    systemLine(t, 'That caption is too long (at most ' + S.limits.max_message + ' bytes).', 'error');
    return;
  }
  clearPreview();
  clearInput();
  let data;
  try {
    data = await readBase64(p.file);
  } catch (e) {
    systemLine(t, 'Could not read that image.', 'error');
    return;
  }
  if (data.length + caption.length * 3 + 200 > S.limits.max_ws_message) {
    systemLine(t, 'That image is too large to send.', 'error');
    return;
  }
  const cid = newCid();
  const payload = { type: 'image', room: t.name, data, cid, ref: cid };
  if (caption) payload.text = caption;
  const shown = { from: S.nick, text: caption ? '[image] ' + caption : '[sending an image…]', ts: Date.now() };
  const reply = takeReply(t);
  if (reply) {
    payload.reply_to = reply.seq;
    shown.reply_to = reply;
  }
  enqueue(payload, t, shown);
}

export function wireImages() {
  ui.attach.addEventListener('click', () => ui.file.click());
  ui.file.addEventListener('change', () => {
    const f = ui.file.files && ui.file.files[0];
    if (f) startPreview(f);
    ui.file.value = '';
  });
  ui.previewCancel.addEventListener('click', () => {
    clearPreview();
    ui.input.focus();
  });

  ui.input.addEventListener('paste', (e) => {
    const items = e.clipboardData ? Array.from(e.clipboardData.files || []) : [];
    const img = items.find((f) => f.type.startsWith('image/'));
    if (img) {
      e.preventDefault();
      startPreview(img);
    }
  });

  let dragDepth = 0;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  ui.chat.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth += 1;
    ui.chat.classList.add('dragging');
  });
  ui.chat.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  ui.chat.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) ui.chat.classList.remove('dragging');
  });
  ui.chat.addEventListener('drop', (e) => {
    dragDepth = 0;
    ui.chat.classList.remove('dragging');
    if (!hasFiles(e)) return;
    e.preventDefault();
    const f = Array.from(e.dataTransfer.files || []).find((x) => x.type.startsWith('image/')) || e.dataTransfer.files[0];
    startPreview(f);
  });
  // Dropping a file elsewhere must not navigate away from the chat.
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener('drop', (e) => { if (hasFiles(e)) e.preventDefault(); });
}
