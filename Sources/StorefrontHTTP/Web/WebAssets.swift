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
        "console.js": asset("text/javascript; charset=utf-8", consoleScript),
    ]

    static let consoleScript = #"""
    'use strict';
    // The operations console's live parts; every page works without this file.
    (function () {
      const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
      const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text == null ? '' : String(text); if (cls) td.className = cls; return td; };
      const row = (cells) => { const tr = document.createElement('tr'); for (const c of cells) tr.append(c); return tr; };
      const setText = (id, text) => { const el = document.getElementById(id); if (el && el.textContent !== String(text)) el.textContent = String(text); };

      const statusClass = (s) => s === 'up' ? 'ok' : s === 'down' ? 'bad' : 'warn';
      const dashboard = document.getElementById('dependencies');
      if (dashboard) {
        const history = []; // [time, {outcome: total}] of one server process
        let server = null;
        (async () => {
          let failures = 0;
          for (;;) {
            await sleep(document.hidden ? 10000 : 2000);
            let status;
            try {
              const res = await fetch('/admin/console/status', { credentials: 'same-origin', headers: { 'Accept': 'application/json' },
                                                                 signal: AbortSignal.timeout(5000) });
              if (res.redirected || res.status === 401) { location.assign('/admin/sign-in'); return; }
              if (!res.ok) throw new Error('status ' + res.status);
              status = await res.json();
              failures = 0;
            } catch (e) {
              if (++failures >= 3) setText('ready', 'console cannot reach the server');
              continue;
            }
            setText('as-of', status.at);
            const ready = document.getElementById('ready');
            ready.textContent = status.ready;
            ready.className = 'badge ' + (status.ready === 'ready' ? 'ok' : 'bad');
            dashboard.tBodies[0].replaceChildren(...status.dependencies.map((d) => row([
              cell(d.name), cell(d.status, statusClass(d.status)), cell(d.latencyMs + ' ms'), cell(d.error)])));
            document.getElementById('servers').tBodies[0].replaceChildren(...(status.servers || []).map((n) => row([
              cell(n.check), cell(n.role), cell(n.endpoint), cell(n.status, statusClass(n.status)),
              cell(n.lagSeconds == null ? '—' : n.lagSeconds + ' s', 'lag'), cell(n.detail)])));
            setText('sagas-in-flight', status.sagasInFlight);
            setText('attention-count', status.needingAttention.length);
            setText('outbox-unpublished', status.outbox.unpublished + (status.outbox.capped ? '+' : ''));
            setText('outbox-oldest', status.outbox.oldestAgeSeconds == null ? '—' : status.outbox.oldestAgeSeconds + ' s');
            document.getElementById('attention').tBodies[0].replaceChildren(...status.needingAttention.map((s) => row([
              cell(s.id), cell(s.state), cell(s.productId), cell(s.attempts), cell(s.lastError)])));
            // Outcomes per minute: the difference of one server's totals over the last 60 s of polls. Behind nginx
            // polls reach either app server, and a restart zeroes the totals: a new server starts a new window.
            if (status.server !== server) { server = status.server; history.length = 0; }
            const now = Date.now();
            history.push([now, status.purchases]);
            while (history.length > 2 && now - history[1][0] >= 60000) history.shift();
            const [then, old] = history[0];
            const span = Math.max(1, (now - then) / 60000);
            document.getElementById('purchases').tBodies[0].replaceChildren(...Object.keys(status.purchases).sort().map((k) => {
              const perMinute = history.length > 1 ? Math.max(0, Math.round((status.purchases[k] - (old[k] || 0)) / span)) : '—';
              const tr = row([cell(k), cell(status.purchases[k], 'total'), cell(perMinute, 'per-minute')]);
              tr.dataset.outcome = k;
              return tr;
            }));
          }
        })();
      }

      const events = document.getElementById('events');
      if (events) {
        (async () => {
          let after = Number(events.dataset.after || 0);
          after = Math.max(0, after - 20); // start with the last 20
          for (;;) {
            let page;
            try {
              const res = await fetch('/admin/events?limit=100&after=' + after, { credentials: 'same-origin', headers: { 'Accept': 'application/json' },
                                                                                   signal: AbortSignal.timeout(5000) });
              if (res.status === 401) { location.assign('/admin/sign-in'); return; }
              if (!res.ok) throw new Error('status ' + res.status);
              page = await res.json();
            } catch (e) {
              await sleep(5000);
              continue;
            }
            for (const item of page.items) {
              after = Math.max(after, item.id);
              const e = item.event;
              const li = document.createElement('li');
              li.className = 'event';
              li.dataset.type = e.type;
              li.textContent = e.occurredAt.slice(11, 23) + '  ' + e.type + '  saga …' + e.sagaId.slice(-8) + '  product ' + e.productId +
                (e.orderId ? '  order ' + e.orderId : '') + (e.reason ? '  — ' + e.reason : '') + (item.published ? '' : '  (not yet published)');
              events.prepend(li);
            }
            while (events.children.length > 50) events.lastElementChild.remove();
            if (!page.next) await sleep(document.hidden ? 10000 : 1000);
          }
        })();
      }
    })();
    """#

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
    .console main { max-width: 72rem; }
    table { border-collapse: collapse; width: 100%; background: #fff; margin: .5rem 0 1rem; }
    th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
    td.ok { color: var(--ok); font-weight: 600; } td.bad { color: var(--bad); font-weight: 600; } td.warn { color: var(--warn); font-weight: 600; }
    .badge { font-size: .85rem; padding: .1rem .5rem; border-radius: 1rem; vertical-align: middle; }
    .badge.ok { background: #e8f5e9; color: var(--ok); } .badge.bad { background: #fdecea; color: var(--bad); }
    .figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: 1rem; margin: 1rem 0; }
    .figure { background: #fff; border: 1px solid var(--line); border-radius: .5rem; padding: .75rem 1rem; }
    .figure .label { display: block; color: var(--muted); font-size: .9rem; }
    .figure .value { font-size: 1.6rem; font-weight: 700; }
    .events { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85rem; background: #fff; border: 1px solid var(--line); padding: .5rem 2rem; max-height: 24rem; overflow: auto; }
    .stack { display: grid; gap: .35rem; max-width: 32rem; }
    .stack label { font-weight: 600; margin-top: .5rem; }
    .stack input, .stack textarea, input.short { font: inherit; padding: .5rem; border: 1px solid #767676; border-radius: .25rem; }
    .stack button { justify-self: start; margin-top: .75rem; }
    input.short { width: 6rem; }
    form.inline { display: inline-flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
    form.inline button { padding: .35rem 1rem; min-height: 36px; }
    .top nav { display: flex; align-items: center; gap: 1rem; flex-wrap: wrap; }
    .top nav a { margin-left: 0; }
    button.link { background: none; color: var(--accent); text-decoration: underline; padding: 0; min-height: 0; font-weight: 400; }
    a.button { display: inline-block; background: var(--accent); color: #fff; padding: .5rem 1.25rem; border-radius: .25rem; text-decoration: none; font-weight: 600; }
    .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
    .hint { color: var(--muted); font-size: .9rem; }
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
        idempotency_key_reused: 'That purchase was already made with another quantity. Press Buy again to buy this one.',
      };

      for (const form of document.querySelectorAll('form[data-purchase]')) {
        const button = form.querySelector('button');
        const box = document.getElementById('message');
        const keyField = form.elements.key;
        // A key belongs to one intent: this product and this quantity. Changing the quantity is a new intent.
        let keyQty = null;
        const freshKey = () => { keyField.value = newKey(); keyQty = null; };
        freshKey();
        let inFlight = false;
        const label = button.textContent;
        // Back to this page from the order page (back/forward cache): ready for a new purchase.
        window.addEventListener('pageshow', (event) => {
          if (event.persisted) { inFlight = false; button.disabled = false; button.textContent = label; freshKey(); }
        });
        form.addEventListener('submit', async (event) => {
          event.preventDefault();
          if (inFlight) return; // no double submit
          inFlight = true;
          button.disabled = true;
          button.textContent = 'Buying…';
          say(box, '', '');
          let leaving = false;
          try {
            const qty = Number(form.elements.qty.value);
            if (keyQty !== null && keyQty !== qty) freshKey();
            keyQty = qty;
            const body = JSON.stringify({ productId: Number(form.dataset.productId), qty });
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
                freshKey();
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

      // The order page: while the saga runs, fetch the page again every second and bring its live parts
      // over (the status's text in place, so screen readers announce it). Stops when the saga is finished,
      // after 10 minutes (a saga waiting for a person), or when the order can no longer be read.
      const order = document.querySelector('article.order[data-terminal="false"]');
      if (order) {
        (async () => {
          const until = Date.now() + 10 * 60 * 1000;
          let failures = 0;
          while (Date.now() < until) {
            await sleep(document.hidden ? 5000 : 1000);
            let html;
            try {
              const res = await fetch(location.href, { credentials: 'same-origin' });
              if (res.status === 404) return;
              if (!res.ok) throw new Error('status ' + res.status);
              html = await res.text();
              failures = 0;
            } catch (e) {
              if (++failures >= 10) return;
              await sleep(Math.min(30000, 1000 * 2 ** failures));
              continue;
            }
            const next = new DOMParser().parseFromString(html, 'text/html');
            const status = document.getElementById('order-status'), nextStatus = next.getElementById('order-status');
            if (status && nextStatus) {
              if (status.textContent !== nextStatus.textContent) status.textContent = nextStatus.textContent;
              status.className = nextStatus.className;
            }
            for (const id of ['saga-state', 'timeline']) {
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
