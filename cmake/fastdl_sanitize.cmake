# FASTDL_SANITIZE=address,undefined (any -fsanitize= list) builds every C++ target, nanobind
# included, with the sanitizers. UB reports abort (-fno-sanitize-recover) so tests fail on
# them. Python must then run with the sanitizer runtime preloaded: tests/sanitizers/run.sh.
set(FASTDL_SANITIZE "" CACHE STRING "Sanitizers for the C++ code, e.g. address,undefined (empty: none)")

if(FASTDL_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "FASTDL_SANITIZE needs GCC or Clang; got ${CMAKE_CXX_COMPILER_ID}")
  endif()
  set(_fastdl_san_flags -fsanitize=${FASTDL_SANITIZE} -fno-omit-frame-pointer -g1)
  if(FASTDL_SANITIZE MATCHES "undefined")
    list(APPEND _fastdl_san_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${_fastdl_san_flags}>")
  add_link_options(-fsanitize=${FASTDL_SANITIZE})
  message(STATUS "fastdl: sanitizers ${FASTDL_SANITIZE}")
endif()
