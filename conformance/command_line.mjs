// The command line of the conformance suite's Node scripts (conformance/bulk, conformance/smart),
// read one way: Node's own util.parseArgs, `--help` (or -h) prints the usage and exits 0, and a
// wrong or missing option prints what is wrong and the usage and exits 2. Plain Node, no dependencies,
// so that each script's own package imports it by path.
import { parseArgs } from "node:util";

/// The options' values; `usageError(message)` for the checks a script makes of them itself.
/// `strict: false` ignores options the script does not know (another script's, given the same line).
export function readCommandLine({ usage, options, required = [], strict = true }) {
  const usageError = (message) => {
    console.error(`${message}\n${usage}`);
    process.exit(2);
  };
  let args;
  try {
    ({ values: args } = parseArgs({ strict, options: { ...options, help: { type: "boolean", short: "h" } } }));
  } catch (e) {
    usageError(e.message);
  }
  if (args.help) {
    console.log(usage);
    process.exit(0);
  }
  for (const name of required) {
    if (typeof args[name] !== "string" || args[name] === "") usageError(`--${name} is required`);
  }
  return { args, usageError };
}
