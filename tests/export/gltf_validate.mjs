// Validates a .glb with the Khronos glTF-Validator (npm gltf-validator, installed by .ci/run under
// $GLTF_VALIDATOR_DIR/node_modules) and prints its report as JSON.
import { createRequire } from "module";
import { readFileSync } from "fs";

const require = createRequire(process.env.GLTF_VALIDATOR_DIR + "/");
const validator = require("gltf-validator");
const report = await validator.validateBytes(new Uint8Array(readFileSync(process.argv[2])), { maxIssues: 100 });
console.log(JSON.stringify({ issues: report.issues, info: report.info }));
