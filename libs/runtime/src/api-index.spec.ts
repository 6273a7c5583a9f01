import { Controller, Get, Post, Query } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';
import { IsOptional, IsString } from 'class-validator';
import { ApiDoc, describeRoutes } from './api-index';

class ThingsQuery {
  @IsOptional() @IsString() name?: string;
  @IsOptional() @IsString() since?: string;
}

@Controller('v1/things')
class ThingsController {
  @Get()
  @ApiDoc('lists things')
  list(@Query() _q: ThingsQuery) {
    return [];
  }

  @Get(':id')
  one(@Query('fields') _fields?: string) {
    return {};
  }

  @Post(['a', 'b'])
  @ApiDoc('makes a thing', { query: ['dry_run'] })
  make() {
    return {};
  }

  @EventPattern('not-http')
  onEvent(data: unknown) {
    return data;
  }

  helper() {
    return 1;
  }
}

describe('describeRoutes', () => {
  it('lists the HTTP routes Nest registers, with their query parameters and ApiDoc line', () => {
    const routes = describeRoutes([ThingsController]).map(({ method, path, query, description }) => ({
      method,
      path,
      query,
      description,
    }));
    expect(routes).toEqual([
      { method: 'GET', path: '/v1/things', query: ['name', 'since'], description: 'lists things' },
      { method: 'GET', path: '/v1/things/:id', query: ['fields'], description: null },
      { method: 'POST', path: '/v1/things/a', query: ['dry_run'], description: 'makes a thing' },
      { method: 'POST', path: '/v1/things/b', query: ['dry_run'], description: 'makes a thing' },
    ]);
  });
});
