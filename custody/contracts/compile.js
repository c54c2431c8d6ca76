// Recompile the test contracts with solc-js (offline): `npm run compile-contracts`.
// The artifacts are committed so that the tests need no compiler.
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const EVM_VERSION = "shanghai"; // eth-tester and anvil both run it; keep it pinned
const here = __dirname;
for (const name of ["TestToken"]) {
  const input = {
    language: "Solidity",
    sources: { [`${name}.sol`]: { content: fs.readFileSync(path.join(here, `${name}.sol`), "utf8") } },
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    console.error(errors.map((e) => e.formattedMessage).join("\n"));
    process.exit(1);
  }
  const contract = output.contracts[`${name}.sol`][name];
  const artifact = {
    contractName: name,
    compiler: `solc-js ${solc.version()}`,
    evmVersion: EVM_VERSION,
    optimizer: { enabled: true, runs: 200 },
    abi: contract.abi,
    bytecode: "0x" + contract.evm.bytecode.object,
  };
  fs.writeFileSync(path.join(here, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
  console.log(`${name}.json written (${artifact.bytecode.length / 2 - 1} bytes of bytecode, ${artifact.compiler})`);
}
