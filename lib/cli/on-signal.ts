/** The long-running commands' exit: on SIGINT or SIGTERM, say so, run `stop`, then exit 0 (1 if stop failed). */
export function stopOnSignal(what: string, stop: () => Promise<unknown>, print: (line: string) => void): void {
  const shutdown = (signal: string) => {
    print(`${signal}: ${what}`);
    stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
