// Images for the update being written: chosen with the picker, dropped on the form or pasted
// into it. Each asks for its alt text, then uploads with a progress bar; an uploaded image is
// attached to the form as a hidden `media` field, in order.
(function () {
  "use strict";
  var root = document.getElementById("story");
  var box = root && root.querySelector("[data-uploads]");
  if (!box) return;
  var form = box.closest("form");
  var list = box.querySelector("[data-upload-list]");
  var input = box.querySelector("[data-upload-input]");
  var csrf = form.querySelector("input[name=csrf_token]");
  var TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif"];
  var count = 0;

  function field(item, label, name, required) {
    var id = "upload-" + name + "-" + item.dataset.n;
    var wrap = document.createElement("div");
    wrap.className = "field";
    var l = document.createElement("label");
    l.htmlFor = id;
    l.textContent = label;
    var i = document.createElement("input");
    i.type = "text";
    i.id = id;
    i.name = "upload_" + name;
    i.required = required;
    wrap.appendChild(l);
    wrap.appendChild(i);
    return wrap;
  }

  function add(file) {
    var item = document.createElement("li");
    item.className = "upload";
    item.dataset.n = ++count;
    var preview = document.createElement("img");
    preview.className = "upload__preview";
    preview.alt = "";
    preview.src = URL.createObjectURL(file);
    var name = document.createElement("p");
    name.className = "upload__name";
    name.textContent = file.name || t("Pasted image");
    var alt = field(item, t("Alt text: what the image shows (required)"), "alt", true);
    var caption = field(item, t("Caption (optional)"), "caption", false);
    var credit = field(item, t("Credit (optional)"), "credit", false);
    var progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    progress.hidden = true;
    var status = document.createElement("p");
    status.className = "upload__status";
    status.setAttribute("role", "status");
    var attach = document.createElement("button");
    attach.type = "button";
    attach.className = "button button--small";
    attach.textContent = t("Upload and attach");
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button button--small button--danger";
    remove.textContent = t("Remove");
    [preview, name, alt, caption, credit, progress, status, attach, remove].forEach(function (n) { item.appendChild(n); });
    list.appendChild(item);
    alt.querySelector("input").focus();

    attach.addEventListener("click", function () {
      var altText = alt.querySelector("input").value.trim();
      if (!altText) { status.textContent = "Write the alt text first: what the image shows."; alt.querySelector("input").focus(); return; }
      var body = new FormData();
      body.append("file", file, file.name || "pasted-image");
      body.append("alt", altText);
      body.append("caption", caption.querySelector("input").value);
      body.append("credit", credit.querySelector("input").value);
      body.append("csrf_token", csrf ? csrf.value : "");
      var xhr = new XMLHttpRequest();  // fetch reports no upload progress
      xhr.open("POST", box.dataset.uploadUrl);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) progress.value = Math.round(100 * event.loaded / event.total);
      });
      xhr.addEventListener("load", function () {
        var data = {};
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = { error: t("The server answered %(status)s.", { status: xhr.status }) }; }
        progress.hidden = true;
        attach.disabled = false;
        if (xhr.status !== 201) { status.textContent = data.error || t("Not uploaded."); return; }
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "media";
        hidden.value = data.media.id;
        item.appendChild(hidden);
        item.dataset.media = data.media.id;
        status.textContent = t("Attached.");
        attach.hidden = true;
        [alt, caption, credit].forEach(function (f) { f.querySelector("input").disabled = true; });
      });
      xhr.addEventListener("error", function () {
        progress.hidden = true;
        attach.disabled = false;
        status.textContent = t("Not uploaded: connection problem. Try again.");
      });
      attach.disabled = true;
      progress.hidden = false;
      status.textContent = t("Uploading…");
      xhr.send(body);
    });
    remove.addEventListener("click", function () { URL.revokeObjectURL(preview.src); item.remove(); input.focus(); });
  }

  function addAll(files) {
    Array.from(files || []).forEach(function (file) {
      if (TYPES.indexOf(file.type) === -1) {
        window.alert(t("%(file)s is not a JPEG, PNG, WebP or GIF image.", { file: file.name || t("That file") }));
        return;
      }
      add(file);
    });
  }

  input.addEventListener("change", function () { addAll(input.files); input.value = ""; });
  form.addEventListener("dragover", function (event) {
    if (event.dataTransfer && Array.from(event.dataTransfer.types).indexOf("Files") !== -1) {
      event.preventDefault();
      form.classList.add("compose--drop");
    }
  });
  form.addEventListener("dragleave", function () { form.classList.remove("compose--drop"); });
  form.addEventListener("drop", function (event) {
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    form.classList.remove("compose--drop");
    addAll(event.dataTransfer.files);
  });
  form.addEventListener("paste", function (event) {
    var files = event.clipboardData ? Array.from(event.clipboardData.files) : [];
    if (!files.length) return;  // text pastes as text
    event.preventDefault();
    addAll(files);
  });
  // Once the update is sent, its images went with it.
  form.addEventListener("tracker:sent", function () {
    list.querySelectorAll("li.upload").forEach(function (item) {
      URL.revokeObjectURL(item.querySelector("img").src);
      item.remove();
    });
  });
})();
