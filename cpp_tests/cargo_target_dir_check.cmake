# Configure-only check that CMake takes the library from where cargo puts it: $CARGO_TARGET_DIR
# (absolute, and relative to the source directory) and TENSORBRIDGE_CARGO_PROFILE. Building the
# crate again would take minutes; the real build path is the one the enclosing build just used.
#
#   cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch dir> -P cargo_target_dir_check.cmake
foreach(var SOURCE_DIR WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "cargo_target_dir_check: pass -D${var}=...")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")

# Configures the project with CARGO_TARGET_DIR=<target_dir> and the profile; checks the library
# directory it chose.
function(expect_library_dir name target_dir profile expected)
  set(build "${WORK_DIR}/${name}")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -E env "CARGO_TARGET_DIR=${target_dir}"
            "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${build}" -DTENSORBRIDGE_BUILD_TESTS=OFF
            "-DTENSORBRIDGE_CARGO_PROFILE=${profile}"
    OUTPUT_VARIABLE output ERROR_VARIABLE output RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: configure failed (${rc}):\n${output}")
  endif()
  file(STRINGS "${build}/CMakeCache.txt" line REGEX "^TENSORBRIDGE_LIBRARY_DIR:INTERNAL=")
  string(REGEX REPLACE "^[^=]*=" "" actual "${line}")
  if(NOT actual STREQUAL expected)
    message(FATAL_ERROR "${name}: CARGO_TARGET_DIR=${target_dir} profile=${profile}: the library "
                        "is taken from\n  ${actual}\nexpected\n  ${expected}")
  endif()
  message(STATUS "${name}: ${actual}")
endfunction()

expect_library_dir(absolute_debug "${WORK_DIR}/cargo-target" debug "${WORK_DIR}/cargo-target/debug")
expect_library_dir(absolute_release "${WORK_DIR}/cargo-target" release
                   "${WORK_DIR}/cargo-target/release")
expect_library_dir(relative_release "rel-target" release "${SOURCE_DIR}/rel-target/release")
file(REMOVE_RECURSE "${WORK_DIR}")
