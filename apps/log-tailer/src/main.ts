import { CommanderError } from 'commander';
import { runMain, runService } from '@coordbus/runtime';
import { loadServiceConfig, TAILER_SERVICE } from './config/service-config';
import { TailerModule } from './tailer.module';

runMain(async () => {
  let config;
  try {
    config = loadServiceConfig(process.argv.slice(2));
  } catch (err) {
    // --help prints and exits 0.
    if (err instanceof CommanderError && err.exitCode === 0) process.exit(0);
    throw err;
  }
  await runService({ config: config.base, module: TailerModule.forRoot(config.tailer) });
}, TAILER_SERVICE);
