# fastdl/_C.pyi: nanobind's stubgen run on the freshly built extension (with the Tensor methods
# the Python layer adds), regenerated after each build of _C and installed beside it.
option(FASTDL_STUBS "Generate the fastdl._C type stubs (fastdl/_C.pyi) at build time" ON)

function(fastdl_add_stubs target)
  if(NOT FASTDL_STUBS)
    return()
  endif()
  if(FASTDL_SANITIZE OR CMAKE_CROSSCOMPILING)
    message(STATUS "fastdl: type stubs skipped (the extension cannot be imported during this build)")
    return()
  endif()
  file(GLOB_RECURSE py_src CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/python/fastdl/*.py)
  set(gen ${PROJECT_SOURCE_DIR}/cmake/fastdl_stubgen.py)
  set(pat ${PROJECT_SOURCE_DIR}/cmake/fastdl_stubgen.pat)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/_C.pyi)
  add_custom_command(OUTPUT ${out}
    COMMAND ${Python_EXECUTABLE} ${gen} $<TARGET_FILE:${target}> ${PROJECT_SOURCE_DIR}/python ${pat} ${out}
    DEPENDS ${target} ${gen} ${pat} ${py_src}
    COMMENT "Generating fastdl/_C.pyi (nanobind stubgen)" VERBATIM)
  add_custom_target(${target}_stubs ALL DEPENDS ${out})
  install(FILES ${out} DESTINATION fastdl)
endfunction()
