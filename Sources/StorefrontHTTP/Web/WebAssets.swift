import Foundation

/// The shop's stylesheet and script, compiled into the binary and served under `/assets/` with an ETag.
/// The script only enhances: every page works without it (forms post, the order page refreshes itself).
enum WebAssets {
    struct Asset: Sendable {
        var contentType: String
        var body: String
        var etag: String
    }

    static let all: [String: Asset] = [
        "shop.css": asset("text/css; charset=utf-8", css),
        "shop.js": asset("text/javascript; charset=utf-8", script),
        "favicon.svg": asset("image/svg+xml", favicon),
    ]

    static let favicon = #"""
    <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#0b5cad"/><path d="M6 9h3l3 12h12l3-9H11" fill="none" stroke="#fff" stroke-width="2.5" stroke-linejoin="round"/><circle cx="13" cy="25" r="2" fill="#fff"/><circle cx="23" cy="25" r="2" fill="#fff"/></svg>
    """#

    static func asset(_ type: String, _ body: String) -> Asset {
        // FNV-1a: the tag only has to change when the text does.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in body.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Asset(contentType: type, body: body, etag: "\"\(String(hash, radix: 16))\"")
    }

    static let css = #"""
    :root { --ink: #1a1a1a; --muted: #4a4a4a; --accent: #0b5cad; --ok: #17612a; --bad: #a1161b; --warn: #7a4b00; --line: #d0d0d0; --bg: #fafafa; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
    a { color: var(--accent); }
    a:focus-visible, button:focus-visible, input:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
    .skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem; }
    .skip:focus { left: .5rem; }
    .top { display: flex; justify-content: space-between; align-items: center; padding: .75rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
    .brand { font-weight: 700; font-size: 1.2rem; text-decoration: none; color: var(--ink); }
    .top nav a { margin-left: 1rem; }
    main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
    h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
    .grid { list-style: none; padding: 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: 1rem; }
    .card { background: #fff; border: 1px solid var(--line); border-radius: .5rem; padding: 1rem; }
    .card h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
    .price { font-size: 1.25rem; font-weight: 600; margin: .25rem 0; }
    .availability.in { color: var(--ok); }
    .availability.low { color: var(--warn); }
    .availability.out { color: var(--bad); }
    .sku, .crumbs, .foot { color: var(--muted); font-size: .9rem; }
    .foot { text-align: center; padding: 2rem 1rem; }
    .product { background: #fff; border: 1px solid var(--line); border-radius: .5rem; padding: 1rem 1.25rem; }
    .buy { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin-top: 1rem; }
    .buy label { display: block; font-weight: 600; width: 100%; }
    .buy input { font: inherit; width: 6rem; padding: .5rem; border: 1px solid #767676; border-radius: .25rem; }
    button { font: inherit; font-weight: 600; padding: .6rem 1.5rem; border: 0; border-radius: .25rem; background: var(--accent); color: #fff; cursor: pointer; min-height: 44px; }
    button[disabled] { background: #6b6b6b; cursor: not-allowed; }
    .message:empty { display: none; }
    .message { padding: .75rem 1rem; border-radius: .25rem; margin: 1rem 0; border: 1px solid var(--line); }
    .message.error { background: #fdecea; border-color: var(--bad); color: var(--bad); }
    .message.busy { background: #fff4e0; border-color: var(--warn); color: var(--warn); }
    .message.ok { background: #e8f5e9; border-color: var(--ok); color: var(--ok); }
    .pager { display: flex; gap: 1rem; margin-top: 1rem; }
    .order { background: #fff; border: 1px solid var(--line); border-radius: .5rem; padding: 1rem 1.25rem; }
    .status { font-weight: 600; font-size: 1.1rem; }
    .status-confirmed { color: var(--ok); }
    .status-cancelled, .status-failed { color: var(--bad); }
    .status-pending { color: var(--warn); }
    .facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
    .facts dt { font-weight: 600; }
    .facts dd { margin: 0; overflow-wrap: anywhere; }
    .timeline { padding-left: 1.25rem; }
    .timeline li { margin: .35rem 0; }
    .timeline .name { font-weight: 600; }
    .timeline .outcome { text-transform: lowercase; }
    .timeline time, .timeline .detail { color: var(--muted); font-size: .9rem; }
    .step-failed .outcome { color: var(--bad); }
    .step-done .outcome { color: var(--ok); }
    .compensation .name::before { content: "↩ "; }
    .live { color: var(--warn); }
    @media (max-width: 30rem) { main { padding: .5rem; } .buy button { width: 100%; } .facts { grid-template-columns: 1fr; } }
    """#

    static let script = #"""
    'use strict';
    // Storefront's pages work without this file; it makes buying feel like a good checkout and keeps
    // the order page live.
    (function () {
      const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

      // One Idempotency-Key per purchase intent, made here, reused on every retry of that intent.
      function newKey() {
        if (window.crypto && crypto.randomUUID) return 'web-' + crypto.randomUUID();
        const bytes = new Uint8Array(16);
        crypto.getRandomValues(bytes);
        return 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      }

      function say(box, text, kind, link) {
        box.className = 'message ' + (kind || '');
        box.textContent = text;
        if (link) {
          const a = document.createElement('a');
          a.href = link;
          a.textContent = 'See what happened';
          box.append(' ', a);
        }
      }

      // Final answers: the intent is over, the next Buy is a new one (a new key).
      const FINAL = {
        insufficient_stock: 'Not enough stock left for that quantity.',
        payment_declined: 'Your payment was declined. Nothing was charged, and the units were put back.',
        payment_unavailable: 'The payment service could not be reached. Nothing was charged; you can try again.',
        purchase_failed: 'The purchase could not be completed and was undone. Nothing was charged.',
        product_not_found: 'This product no longer exists.',
      };

      for (const form of document.querySelectorAll('form[data-purchase]')) {
        const button = form.querySelector('button');
        const box = document.getElementById('message');
        const keyField = form.elements.key;
        keyField.value = newKey();
        let inFlight = false;
        form.addEventListener('submit', async (event) => {
          event.preventDefault();
          if (inFlight) return; // no double submit
          inFlight = true;
          const label = button.textContent;
          button.disabled = true;
          button.textContent = 'Buying…';
          say(box, '', '');
          let leaving = false;
          try {
            const body = JSON.stringify({ productId: Number(form.dataset.productId), qty: Number(form.elements.qty.value) });
            for (let attempt = 1; ; attempt++) {
              let res;
              try {
                res = await fetch('/purchase', {
                  method: 'POST', body, credentials: 'same-origin',
                  headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'Idempotency-Key': keyField.value },
                });
              } catch (e) {
                say(box, 'Network problem: we could not hear back. Press Buy again — it retries this same purchase, it never buys twice.', 'error');
                return;
              }
              const answer = await res.json().catch(() => ({}));
              if (res.status === 201 || res.status === 202) {
                leaving = true;
                location.assign('/shop/orders/' + answer.orderId);
                return;
              }
              const error = answer.error || {};
              if ((error.code === 'product_busy' || error.code === 'service_unavailable') && attempt < 30) {
                const seconds = Math.max(1, Number(res.headers.get('Retry-After')) || 1);
                say(box, 'Busy, retrying… (many people are buying this right now)', 'busy');
                button.textContent = 'Busy, retrying…';
                await sleep(seconds * 1000);
                continue;
              }
              if (FINAL[error.code]) {
                keyField.value = newKey();
                say(box, FINAL[error.code], 'error', error.sagaId ? '/shop/sagas/' + error.sagaId : null);
              } else {
                say(box, error.message || ('Something went wrong (' + res.status + '). Press Buy to try again.'), 'error');
              }
              return;
            }
          } finally {
            inFlight = leaving;
            if (!leaving) { button.disabled = false; button.textContent = label; }
          }
        });
      }

      // The order page: while the saga runs, fetch the page again every second and swap in its live parts.
      const order = document.querySelector('article.order[data-terminal="false"]');
      if (order) {
        (async () => {
          for (;;) {
            await sleep(1000);
            let html;
            try { html = await (await fetch(location.href, { credentials: 'same-origin' })).text(); } catch (e) { continue; }
            const next = new DOMParser().parseFromString(html, 'text/html');
            for (const id of ['order-status', 'saga-state', 'timeline']) {
              const now = document.getElementById(id), then = next.getElementById(id);
              if (now && then) now.replaceWith(document.importNode(then, true));
            }
            const fresh = next.querySelector('article.order');
            if (fresh && fresh.dataset.terminal === 'true') {
              const live = document.getElementById('live');
              if (live) live.remove();
              order.dataset.terminal = 'true';
              return;
            }
          }
        })();
      }
    })();
    """#
}
