import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { cleanupOpenApiDoc } from 'nestjs-zod';
import { ErrorResponseDto } from '../http/error-body';

export const OPENAPI_JSON_PATH = '/openapi.json';
export const OPENAPI_UI_PATH = '/docs';
/** The security scheme name controllers reference with `@ApiBearerAuth(BEARER_SCHEME)`. */
export const BEARER_SCHEME = 'bearer';

/** The OpenAPI document, generated from the controllers and their zod DTOs. */
export function buildOpenApiDocument(app: NestFastifyApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Norm API')
    .setDescription(
      'Control plane for Xen. Errors always have the shape `{ error: { code, message, details?, requestId } }`; ' +
        '`requestId` matches the `x-request-id` response header.',
    )
    .setVersion('0.1.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'A Norm API token' }, BEARER_SCHEME)
    .build();
  return cleanupOpenApiDoc(SwaggerModule.createDocument(app, config, { extraModels: [ErrorResponseDto] }));
}

/** Serves the document at /openapi.json and Swagger UI at /docs. */
export function setupOpenApi(app: NestFastifyApplication): void {
  SwaggerModule.setup(OPENAPI_UI_PATH.slice(1), app, () => buildOpenApiDocument(app), {
    jsonDocumentUrl: OPENAPI_JSON_PATH.slice(1),
    raw: ['json'],
  });
}
