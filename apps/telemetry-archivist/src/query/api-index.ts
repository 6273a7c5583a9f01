import { Controller, Get, Injectable, Type, UseGuards } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { ApiDoc, describeRoutes } from '@coordbus/runtime';
import { AccessGuard, accessOf } from '../access/access.guard';
import { AccessLevel } from '../access/access-policy';

/** One endpoint of the index. */
export interface IndexedEndpoint {
  method: string;
  path: string;
  query: string[];
  description: string | null;
  /** What it needs: nothing, the read token (`COORDBUS_API_TOKEN`) or the operator token. */
  access: AccessLevel | 'none';
}

export interface ApiIndexBody {
  service: 'telemetry-archivist';
  /** Where the fleet console is (HTML). */
  console: '/';
  endpoints: IndexedEndpoint[];
}

/**
 * The API's index, built from the routes Nest registered (every controller of the app, the
 * runtime's health routes included), so it cannot drift from what the server answers.
 */
@Injectable()
export class ApiIndex {
  private built?: ApiIndexBody;

  constructor(private readonly discovery: DiscoveryService) {}

  body(): ApiIndexBody {
    this.built ??= {
      service: 'telemetry-archivist',
      console: '/',
      endpoints: describeRoutes(
        this.discovery
          .getControllers()
          .map((w) => w.metatype)
          .filter((t): t is Type => typeof t === 'function'),
      ).map((r) => ({
        method: r.method,
        path: r.path,
        query: r.query,
        description: r.description,
        access: accessOf(r.controller, r.handler),
      })),
    };
    return this.built;
  }
}

/** `GET /v1` (and `/v1/`): the index, behind the same door as every other `/v1` read. */
@Controller('v1')
@UseGuards(AccessGuard)
export class ApiIndexController {
  constructor(private readonly index: ApiIndex) {}

  @Get()
  @ApiDoc('this index: every endpoint with its method, path, query parameters and the token it needs')
  list(): ApiIndexBody {
    return this.index.body();
  }
}
