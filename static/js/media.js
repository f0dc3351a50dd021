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
    fig.appendChild(picture);
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
  }

  window.TrackerMedia = { figure: figure, render: render };
})();
