import { loadCommands } from '@coordbus/lua';

/** The console's Lua commands, one `<name>-<numberOfKeys>.lua` file each beside this one. */
export const CONSOLE_COMMANDS = loadCommands(__dirname);
