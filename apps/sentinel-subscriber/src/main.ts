import { runMain, runService } from '@coordbus/runtime';
import { loadSentinelConfig, SENTINEL_SERVICE } from './config';
import { SentinelModule } from './sentinel.module';

runMain(async () => {
  const config = loadSentinelConfig();
  await runService({ config: config.base, module: SentinelModule.forRoot(config) });
}, SENTINEL_SERVICE);
