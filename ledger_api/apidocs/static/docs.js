// Renders the node's own OpenAPI document with the pinned, locally served Swagger UI (no CDN).
window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: false,
    tryItOutEnabled: false,
    supportedSubmitMethods: [],
  });
});
