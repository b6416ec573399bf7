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
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Storefront</title>
        <link rel="stylesheet" href="/assets/shop.css">
        <link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
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
        <form class="buy" method="post" action="/shop/products/{{id}}/buy" data-purchase data-product-id="{{id}}">
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

        "problem": #"""
        <h1>{{heading}}</h1>
        <p>{{message}}</p>
        <p><a href="/">Back to the catalogue</a></p>
        """#,
    ]
}
