// Images in updates: builds the same <figure> as the server's `figure` macro, from an entry's
// `media` states, with the DOM (text as text, never as HTML).
(function () {
  "use strict";
  var SIZES = "(min-width: 48rem) 44rem, 100vw";

  function srcset(variants) {
    return variants.map(function (v) { return v.url + " " + v.width + "w"; }).join(", ");
  }

  function figure(media) {
    var fig = document.createElement("figure");
    fig.className = "media";
    var picture = document.createElement("picture");
    var source = document.createElement("source");
    source.type = "image/webp";
    source.srcset = srcset(media.variants.filter(function (v) { return v.type === "image/webp"; }));
    source.sizes = SIZES;
    var img = document.createElement("img");
    img.src = media.url;
    img.srcset = srcset(media.variants.filter(function (v) { return v.type !== "image/webp"; }));
    img.sizes = SIZES;
    img.width = media.width;
    img.height = media.height;
    img.alt = media.alt;
    img.loading = "lazy";
    img.decoding = "async";
    picture.appendChild(source);
    picture.appendChild(img);
    var open = document.createElement("a");
    open.className = "media__open";
    open.href = media.url;
    open.setAttribute("aria-label", t("Open the image: %(alt)s", { alt: media.alt }));
    open.appendChild(picture);
    fig.appendChild(open);
    if (media.caption || media.credit) {
      var caption = document.createElement("figcaption");
      caption.textContent = media.caption;
      if (media.credit) {
        var credit = document.createElement("span");
        credit.className = "media__credit";
        credit.textContent = media.credit;
        caption.appendChild(document.createTextNode(" "));
        caption.appendChild(credit);
      }
      fig.appendChild(caption);
    }
    return fig;
  }

  // Show an entry's images in its card's [data-entry-media] box.
  function render(box, mediaList) {
    if (!box) return;
    box.replaceChildren.apply(box, (mediaList || []).map(figure));
    box.hidden = !box.children.length;
    box.classList.toggle("entry__media--gallery", box.children.length > 1);
  }

  // The viewer: an update's images one at a time, large, in a modal dialog. Arrow keys and the
  // buttons move between them, Escape closes it, and focus goes back to the image it came from.
  var viewer = null, shown = [], at = 0, opener = null;

  function build() {
    viewer = document.createElement("dialog");
    viewer.className = "viewer";
    viewer.setAttribute("aria-label", t("Images of this update"));
    viewer.innerHTML = '<div class="viewer__frame"><img class="viewer__image" alt=""></div>' +
      '<p class="viewer__caption"></p><p class="viewer__count" aria-live="polite"></p>' +
      '<div class="viewer__controls"><button type="button" class="button" data-go="-1"></button>' +
      '<button type="button" class="button" data-go="1"></button>' +
      '<button type="button" class="button" data-close></button></div>';
    viewer.querySelector('[data-go="-1"]').textContent = t("Previous");
    viewer.querySelector('[data-go="1"]').textContent = t("Next");
    viewer.querySelector("[data-close]").textContent = t("Close");
    viewer.addEventListener("click", function (event) {
      var go = event.target.closest("[data-go]");
      if (go) show(at + +go.dataset.go);
      else if (event.target.closest("[data-close]") || event.target === viewer) viewer.close();
    });
    viewer.addEventListener("keydown", function (event) {
      if (event.key === "ArrowRight") { event.preventDefault(); show(at + 1); }
      if (event.key === "ArrowLeft") { event.preventDefault(); show(at - 1); }
    });
    viewer.addEventListener("close", function () { if (opener) opener.focus(); });
    document.body.appendChild(viewer);
  }

  function show(index) {
    at = (index + shown.length) % shown.length;
    var figureEl = shown[at];
    var img = figureEl.querySelector("img");
    var large = viewer.querySelector(".viewer__image");
    large.src = figureEl.querySelector(".media__open").href;
    large.alt = img.alt;
    var caption = figureEl.querySelector("figcaption");
    viewer.querySelector(".viewer__caption").textContent = caption ? caption.textContent : "";
    viewer.querySelector(".viewer__count").textContent = t("Image %(number)s of %(count)s", { number: at + 1, count: shown.length });
    viewer.querySelectorAll("[data-go]").forEach(function (button) { button.hidden = shown.length < 2; });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest(".media__open");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    if (!viewer) build();
    opener = link;
    var box = link.closest("[data-entry-media]") || link.closest("figure").parentNode;
    shown = Array.from(box.querySelectorAll("figure.media"));
    viewer.showModal();
    show(shown.indexOf(link.closest("figure")));
    viewer.querySelector("[data-close]").focus();
  });

  window.TrackerMedia = { figure: figure, render: render };
})();
