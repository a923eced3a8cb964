import { createApp } from "vue";
import App from "./App.vue";
import { locale, setLocale } from "./i18n/index.js";
import "./styles.css";

setLocale(locale.value); // sets <html lang> from the stored choice
createApp(App).mount("#app");
