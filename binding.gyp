# For node-gyp based tooling only: the addon is built by CMake (CMakeLists.txt holds the sources
# and flags). "node-gyp rebuild" runs scripts/build-native.mjs, which leaves the same
# build/Release/cangen.node that node-gyp would.
{
  "targets": [
    {
      "target_name": "cangen_cmake",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake_js_build",
          "inputs": ["CMakeLists.txt"],
          "outputs": ["build/Release/cangen.node"],
          "action": ["node", "scripts/build-native.mjs"]
        }
      ]
    }
  ]
}
