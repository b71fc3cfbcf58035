/* The OpenAPI 3.1 description of the management API, built from the route table. */
import type { ApiRoute } from './api-routes.js';

export const OPENAPI_PATH = '/api/openapi.json';
export const METRICS_PATH = '/metrics';

function parameters(route: ApiRoute) {
  const list: object[] = [];
  const add = (where: 'path' | 'query', schema: object | undefined) => {
    const { properties = {}, required = [] } = (schema ?? {}) as { properties?: Record<string, { description?: string }>; required?: string[] };
    for (const [name, property] of Object.entries(properties)) {
      list.push({ name, in: where, required: where === 'path' || required.includes(name), description: property.description, schema: property });
    }
  };
  add('path', route.params);
  add('query', route.querystring);
  return list;
}

export function openApiDocument(routes: ApiRoute[]): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = {
      summary: route.summary,
      'x-edgeplane-role': route.role,
      parameters: parameters(route),
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: route.body } } } } : {}),
      responses: {
        200: { description: 'OK', content: { 'application/json': {} } },
        400: { description: 'invalid input; the message says which field and why' },
        403: { description: route.role === 'peer' ? "not a cluster member's unit certificate" : `the client certificate's role is not allowed (needs ${route.role})` },
        ...(route.params || route.method === 'DELETE' ? { 404: { description: 'no such service, server or connection' } } : {}),
        ...(route.method === 'POST' && route.params ? { 409: { description: 'the server is there already, or is the last one of its service' } } : {}),
        503: { description: 'the data plane is not running' },
      },
    };
  }
  paths[METRICS_PATH] = {
    get: { summary: 'Prometheus metrics of this unit, data plane counters included', 'x-edgeplane-role': 'read-only', responses: { 200: { description: 'Prometheus text exposition' } } },
  };
  paths[OPENAPI_PATH] = {
    get: { summary: 'This document', 'x-edgeplane-role': 'read-only', responses: { 200: { description: 'OpenAPI 3.1 JSON' } } },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'edgeplane management API',
      version: '1',
      description:
        'Served by every unit on its management address over HTTPS with mutual TLS. Clients present an operator certificate issued by the cluster CA whose SAN URI urn:edgeplane:operator:<name>:role:<role> gives the role: read-only may GET, operator may also change things. On a cluster member every view is cluster-wide from any member (it asks its peers and merges, with a per-member breakdown) and every change is applied on every member (the member asked forwards it; the answer lists where it applied). Routes with x-edgeplane-role "peer" are cluster-internal: only members\' unit certificates (SAN URI urn:edgeplane:unit:<id>) may call them, and those certificates may call nothing else. A unit that is not clustered answers for itself (cluster.mode "single-unit").',
    },
    components: { securitySchemes: { mutualTLS: { type: 'mutualTLS', description: 'operator certificate from the cluster CA' } } },
    security: [{ mutualTLS: [] }],
    paths,
  };
}
