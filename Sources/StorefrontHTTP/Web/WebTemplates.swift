import Mustache

/// The shop's server-rendered pages (Mustache; `{{x}}` is HTML-escaped, nothing is rendered unescaped but
/// the layout's `{{{body}}}`, which is another template's output). The templates are compiled into the binary,
/// so a copied `storefront` executable serves the shop with no files beside it.
enum WebTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            do { try library.register(text, named: name) } catch { fatalError("template \(name) does not parse: \(error)") }
        }
        return library
    }()

    static func render(_ name: String, _ object: Any) -> String {
        guard let page = library.render(object, withTemplate: name) else { fatalError("no template \(name)") }
        return page
    }

    /// A template's object without its nil values (Mustache would print an `Optional` held in `Any`).
    static func object(_ values: [String: Any?]) -> [String: Any] {
        values.compactMapValues { $0 }
    }

    static let templates: [String: String] = [
        "layout": #"""
        <!doctype html>
        <html lang="en">
        <head>
        {{> head}}
        {{#refreshSeconds}}<noscript><meta http-equiv="refresh" content="{{refreshSeconds}}"></noscript>{{/refreshSeconds}}
        <script src="/assets/shop.js" defer></script>
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top"><a class="brand" href="/">Storefront</a><nav aria-label="Site"><a href="/">Catalogue</a></nav></header>
        <main id="main" tabindex="-1">
        {{{body}}}
        </main>
        <footer class="foot"><p>Storefront · every purchase is a saga: each order page shows its steps as they happen.</p></footer>
        </body>
        </html>
        """#,

        // What both layouts' <head> start with; `site` names the shop or the console in the title.
        "head": #"""
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · {{site}}</title>
        <link rel="stylesheet" href="/assets/shop.css">
        <link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
        """#,

        "catalogue": #"""
        <h1>Catalogue</h1>
        {{^items}}<p class="empty">No products yet.</p>{{/items}}
        <ul class="grid">
        {{#items}}
        <li class="card">
        <h2><a href="/shop/products/{{id}}">{{name}}</a></h2>
        <p class="price">{{price}}</p>
        <p class="availability {{availabilityClass}}">{{availability}}</p>
        </li>
        {{/items}}
        </ul>
        <nav class="pager" aria-label="Pages">
        {{#first}}<a href="/">First page</a>{{/first}}
        {{#next}}<a rel="next" href="/?after={{next}}">Next page</a>{{/next}}
        </nav>
        """#,

        "product": #"""
        <p class="crumbs"><a href="/">Catalogue</a></p>
        <article class="product" data-product-id="{{id}}">
        <h1>{{name}}</h1>
        <p class="sku">SKU {{sku}}</p>
        {{#description}}<p class="description">{{description}}</p>{{/description}}
        <p class="price">{{price}}</p>
        <p class="availability {{availabilityClass}}" id="availability">{{availability}}</p>
        <div id="message" class="message {{messageClass}}" role="status" aria-live="polite">{{#message}}{{message}}{{#timeline}} <a href="{{timeline}}">See what happened</a>{{/timeline}}{{/message}}</div>
        <form class="buy" method="post" action="/shop/products/{{id}}/buy" data-purchase data-product-id="{{id}}" autocomplete="off">
        <input type="hidden" name="key" value="{{key}}">
        <label for="qty">Quantity</label>
        <input id="qty" name="qty" type="number" inputmode="numeric" min="1" max="{{maxQty}}" value="{{qty}}" required{{#soldOut}} disabled{{/soldOut}}>
        <button type="submit"{{#soldOut}} disabled{{/soldOut}}>{{#soldOut}}Sold out{{/soldOut}}{{^soldOut}}Buy{{/soldOut}}</button>
        </form>
        </article>
        """#,

        "order": #"""
        <p class="crumbs"><a href="/">Catalogue</a> · <a href="/shop/products/{{productId}}">Product</a></p>
        <article class="order" data-order-id="{{id}}" data-terminal="{{terminal}}">
        <h1>Order {{id}}</h1>
        <p class="status status-{{statusClass}}" id="order-status" role="status" aria-live="polite">{{statusText}}</p>
        <dl class="facts">
        <dt>Quantity</dt><dd>{{qty}}</dd>
        <dt>Amount</dt><dd>{{amount}}</dd>
        <dt>Placed</dt><dd><time datetime="{{createdAt}}">{{createdAtText}}</time></dd>
        <dt>Saga</dt><dd><code>{{sagaId}}</code> <span id="saga-state">{{sagaState}}</span></dd>
        </dl>
        <h2>Timeline</h2>
        <ol class="timeline" id="timeline">
        {{#steps}}
        <li class="step step-{{statusClass}}{{#compensation}} compensation{{/compensation}}"><span class="name">{{label}}</span> <span class="outcome">{{status}}</span> <time datetime="{{at}}">{{atText}}</time>{{#detail}} <span class="detail">{{detail}}</span>{{/detail}}</li>
        {{/steps}}
        </ol>
        {{^terminal}}<p class="live" id="live">Still running — this page updates by itself (polling every second).</p>{{/terminal}}
        </article>
        """#,

        "console-layout": #"""
        <!doctype html>
        <html lang="en">
        <head>
        {{> head}}
        <script src="/assets/console.js" defer></script>
        </head>
        <body class="console">
        <a class="skip" href="#main">Skip to content</a>
        <header class="top"><a class="brand" href="/admin/console">Storefront · Operations</a>
        {{#signedIn}}<nav aria-label="Console"><a href="/admin/console">Dashboard</a><a href="/admin/console/products">Products</a><a href="/">Shop</a>
        <form class="inline" method="post" action="/admin/console/sign-out"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="link">Sign out</button></form></nav>{{/signedIn}}
        </header>
        <main id="main" tabindex="-1">
        {{{body}}}
        </main>
        </body>
        </html>
        """#,

        "console-sign-in": #"""
        <h1>Sign in</h1>
        {{#message}}<div class="message error" role="alert">{{message}}</div>{{/message}}
        <form class="stack" method="post" action="/admin/sign-in" autocomplete="off">
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" required autofocus>
        <button type="submit">Sign in</button>
        </form>
        <p class="hint">The token is the server's STOREFRONT_ADMIN_TOKEN. Signing in gives this browser a session cookie for 8 hours.</p>
        """#,

        "console-dashboard": #"""
        <h1>Dashboard</h1>
        <p class="hint">As of <time id="as-of" datetime="{{at}}">{{at}}</time> · this page refreshes every 2 seconds (polling).</p>
        {{#problems}}<div class="message error">{{.}}</div>{{/problems}}
        <section aria-labelledby="deps-h"><h2 id="deps-h">Dependencies <span id="ready" class="badge {{readyClass}}">{{ready}}</span></h2>
        <table id="dependencies"><thead><tr><th scope="col">Check</th><th scope="col">Status</th><th scope="col">Latency</th><th scope="col">Detail</th></tr></thead>
        <tbody>{{#dependencies}}<tr><td>{{name}}</td><td class="{{statusClass}}">{{status}}</td><td>{{latencyMs}} ms</td><td>{{error}}</td></tr>{{/dependencies}}</tbody></table>
        </section>
        <section aria-labelledby="servers-h"><h2 id="servers-h">Servers</h2>
        <table id="servers"><thead><tr><th scope="col">Check</th><th scope="col">Role</th><th scope="col">Server</th><th scope="col">Status</th><th scope="col">Replication lag</th><th scope="col">Detail</th></tr></thead>
        <tbody>{{#servers}}<tr><td>{{check}}</td><td>{{role}}</td><td>{{endpoint}}</td><td class="{{statusClass}}">{{status}}</td><td class="lag">{{lag}}</td><td>{{detail}}</td></tr>{{/servers}}</tbody></table>
        <p class="hint">Each server behind a check (the database's primary and replicas, the Redis nodes). The embedded server has none: its database, cache, locks and event log are in its own process.</p>
        </section>
        <section class="figures" aria-label="Figures">
        <div class="figure"><span class="label">Sagas in flight</span><span class="value" id="sagas-in-flight">{{sagasInFlight}}</span></div>
        <div class="figure"><span class="label">Need attention</span><span class="value" id="attention-count">{{attentionCount}}</span></div>
        <div class="figure"><span class="label">Outbox unpublished</span><span class="value" id="outbox-unpublished">{{outboxUnpublished}}</span></div>
        <div class="figure"><span class="label">Oldest unpublished</span><span class="value" id="outbox-oldest">{{outboxOldest}}</span></div>
        </section>
        <section aria-labelledby="purchases-h"><h2 id="purchases-h">Purchase outcomes (this server)</h2>
        <table id="purchases"><thead><tr><th scope="col">Outcome</th><th scope="col">Since start</th><th scope="col">Last minute</th></tr></thead>
        <tbody>{{#purchases}}<tr data-outcome="{{outcome}}"><td>{{outcome}}</td><td class="total">{{count}}</td><td class="per-minute">—</td></tr>{{/purchases}}</tbody></table>
        </section>
        <section aria-labelledby="attention-h"><h2 id="attention-h">Sagas that need attention</h2>
        <table id="attention"><thead><tr><th scope="col">Saga</th><th scope="col">State</th><th scope="col">Product</th><th scope="col">Attempts</th><th scope="col">Last error</th></tr></thead>
        <tbody>{{#needingAttention}}<tr><td><code>{{id}}</code></td><td>{{state}}</td><td>{{productId}}</td><td>{{attempts}}</td><td>{{lastError}}</td></tr>{{/needingAttention}}</tbody></table>
        </section>
        <section aria-labelledby="events-h"><h2 id="events-h">Saga events, live</h2>
        <ol id="events" class="events" data-after="{{latestEventId}}" aria-live="polite" aria-labelledby="events-h" tabindex="0"></ol>
        <noscript><p>The live tail needs JavaScript; <a href="/admin/events?limit=50">the events as JSON</a>.</p></noscript>
        </section>
        """#,

        "console-products": #"""
        <h1>Products</h1>
        <p><a class="button" href="/admin/console/products/new">New product</a></p>
        <table id="products"><thead><tr><th scope="col">Id</th><th scope="col">SKU</th><th scope="col">Name</th><th scope="col">Price</th><th scope="col">Available</th><th scope="col">Restock</th></tr></thead>
        <tbody>
        {{#items}}<tr data-product-id="{{id}}"><td>{{id}}</td><td>{{sku}}</td><td><a href="/admin/console/products/{{id}}">{{name}}</a></td><td>{{price}}</td><td class="available">{{available}}</td>
        <td><form class="inline" method="post" action="/admin/console/products/{{id}}/restock"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="back" value="list">
        <label class="visually-hidden" for="restock-{{id}}">Units to add to {{name}}</label><input id="restock-{{id}}" name="qty" type="number" min="1" value="10" class="short" required>
        <button type="submit">Add</button></form></td></tr>{{/items}}
        </tbody></table>
        <nav class="pager" aria-label="Pages">{{#first}}<a href="/admin/console/products">First page</a>{{/first}}{{#next}}<a rel="next" href="/admin/console/products?after={{next}}">Next page</a>{{/next}}</nav>
        """#,

        "console-product": #"""
        <p class="crumbs"><a href="/admin/console/products">Products</a> · <a href="/shop/products/{{id}}">In the shop</a></p>
        <h1>{{name}}</h1>
        {{#notice}}<div class="message ok" role="status">{{notice}}</div>{{/notice}}
        {{#error}}<div class="message error" role="alert">{{error}}</div>{{/error}}
        <dl class="facts"><dt>Price</dt><dd>{{price}}</dd><dt>Available</dt><dd id="available">{{available}}</dd><dt>Held by sagas in flight</dt><dd>{{held}}</dd><dt>On hand</dt><dd>{{onHand}}</dd><dt>Version</dt><dd>{{version}}</dd></dl>
        <h2>Restock</h2>
        <form class="inline" method="post" action="/admin/console/products/{{id}}/restock"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="restock-qty">Units to add</label> <input id="restock-qty" name="qty" type="number" min="1" value="10" class="short" required> <button type="submit">Restock</button></form>
        <h2>Edit</h2>
        {{{form}}}
        """#,

        "console-product-form": #"""
        {{#message}}<div class="message error" role="alert">{{message}}</div>{{/message}}
        <form class="stack" method="post" action="{{action}}">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="sku">SKU</label><input id="sku" name="sku" value="{{sku}}" required maxlength="64">
        <label for="name">Name</label><input id="name" name="name" value="{{name}}" required maxlength="200">
        <label for="description">Description</label><textarea id="description" name="description" rows="3">{{description}}</textarea>
        <label for="priceMinor">Price in minor units (cents: 1250 is 12.50)</label><input id="priceMinor" name="priceMinor" type="number" min="0" value="{{priceMinor}}" required>
        <label for="currency">Currency (ISO 4217)</label><input id="currency" name="currency" value="{{currency}}" required maxlength="3" class="short">
        {{^editing}}<label for="stock">Initial stock</label><input id="stock" name="stock" type="number" min="0" value="{{stock}}" required class="short">{{/editing}}
        <button type="submit">{{#editing}}Save{{/editing}}{{^editing}}Create{{/editing}}</button>
        </form>
        """#,

        "problem": #"""
        <h1>{{heading}}</h1>
        <p>{{message}}</p>
        <p><a href="/">Back to the catalogue</a></p>
        """#,
    ]
}
