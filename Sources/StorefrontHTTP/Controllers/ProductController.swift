import Hummingbird
import StorefrontCore

/// `GET /products/{id}` and `GET /products?limit&after` (replica reads, cache-aside).
struct ProductController {
    let catalog: CatalogService

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("/products/:id") { _, context in
            try jsonResponse(ProductDTO(try await catalog.product(id: try context.positiveID())))
        }
        router.get("/products") { request, _ in
            let query = request.uri.queryParameters
            var limit = 20
            if let raw = query.get("limit") {
                guard let value = Int(raw), value >= 1, value <= catalog.settings.maxPageSize else {
                    throw APIError.invalidParameter("limit must be an integer between 1 and \(catalog.settings.maxPageSize)")
                }
                limit = value
            }
            let after = try query.get("after").map { try Cursor.decode($0) }
            let page = try await catalog.list(after: after, limit: limit)
            return try jsonResponse(ProductPageDTO(items: page.items.map(ProductDTO.init), next: page.next.map(Cursor.encode)))
        }
    }
}
