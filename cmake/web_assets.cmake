# irt_embed_web_files(OUT_CPP HEADER NAMESPACE NAME=PATH...): a build-time rule
# that writes OUT_CPP (cmake/embed.cmake) with the files as byte arrays and
# web_assets() in NAMESPACE, rewritten whenever one of them changes.
# Used by the hub's dashboard (hub/web_ui.h) and the node's tablet UI (node/web_ui.h).
set(IRT_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed.cmake)
function(irt_embed_web_files out_cpp header namespace)
  set(paths "")
  foreach(pair IN LISTS ARGN)
    string(REPLACE "=" ";" parts "${pair}")
    list(GET parts 1 path)
    list(APPEND paths ${path})
  endforeach()
  list(JOIN ARGN "|" files_arg)
  add_custom_command(OUTPUT ${out_cpp}
                     COMMAND ${CMAKE_COMMAND} "-DFILES=${files_arg}" -DOUT=${out_cpp} -DHEADER=${header}
                             -DNAMESPACE=${namespace} -P ${IRT_EMBED_SCRIPT}
                     DEPENDS ${paths} ${IRT_EMBED_SCRIPT}
                     COMMENT "Embedding the web files of ${header}" VERBATIM)
  # Compiled on its own: a changed page recompiles only the byte arrays.
  set_source_files_properties(${out_cpp} PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
endfunction()
