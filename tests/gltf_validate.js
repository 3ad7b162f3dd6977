// Run by tests/test_glb.py: validates a .glb with Khronos' glTF-Validator (the npm package
// gltf-validator) and prints its report as one JSON line.
//     node tests/gltf_validate.js VALIDATOR_MODULE_DIR FILE.glb
const fs = require("fs");
const validator = require(process.argv[2]);

validator.validateBytes(new Uint8Array(fs.readFileSync(process.argv[3])), { maxIssues: 0 })
    .then((report) => console.log(JSON.stringify(report)))
    .catch((error) => {
        console.error(`gltf-validator failed: ${error}`);
        process.exit(1);
    });
