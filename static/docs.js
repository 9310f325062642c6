// The API docs page: Swagger UI (vendored under /portal/vendor/swagger-ui/) over this gateway's
// /openapi.json. Offline: no validator badge (it would call validator.swagger.io), no CDN, no
// fonts from elsewhere; "Try it out" calls this gateway (the document names no server, so the
// page's origin). The admin token the portal keeps in localStorage is offered to the
// admin_token scheme, so the gated endpoints answer without typing it again.
const TOKEN_KEY = 'llm-gateway.admin-token';

window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: false,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 1,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  onComplete: () => {
    const token = localStorage.getItem(TOKEN_KEY);
    if (token) window.ui.preauthorizeApiKey('admin_token', token);
    document.body.dataset.ready = 'docs';
  },
});
